"""Files and folders: the one way faceswap-lite replaces a file (atomically: faces, checkpoints,
previews, config), the check before writing that an output folder can be written, the one
"disk full" message, and the lock that keeps a second process out of a folder."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import FaceswapLiteError

FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # out of space, over the file-size limit, over quota


class DiskFullError(FaceswapLiteError):
    """A write ran out of space (ENOSPC, or the file-size limit): nothing was left half-written.
    ``reason`` is the message without the advice, for callers that give their own."""

    def __init__(self, reason: str, advice: str) -> None:
        super().__init__(f"{reason}: {advice}")
        self.reason = reason


class FolderLockedError(FaceswapLiteError):
    """Another process holds the folder's lock (a run training, say)."""


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None], sync_dir: bool = False) -> Path:
    """Write a file atomically: ``write(fh)`` fills a hidden temporary file beside ``path``
    (``.NAME.XXXXXXXX.tmp``), which is flushed, fsynced and renamed over ``path``; with ``sync_dir``
    the folder is fsynced too, so the rename itself survives a power cut. A crash or Ctrl-C leaves the
    old file or none, never half of one. The file gets normal permissions (umask applies), unlike
    ``tempfile.mkstemp``'s 0600. A full disk raises :class:`DiskFullError`.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.stem}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    written = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            try:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                written = _position(fh)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in FULL:
            raise disk_full(path, written) from None
        raise
    if sync_dir:
        fsync_dir(path.parent)
    return path


def _position(fh: BinaryIO) -> int:
    try:
        return fh.tell()
    except (OSError, ValueError):
        return 0


def check_output_folder(output: Path, error: type[Exception], name: str = "output") -> None:
    """Raise ``error`` unless ``output`` is a writable folder or can be created (checked without
    writing); ``name`` is how the message calls it when it is a file (the option, e.g. ``-o``)."""
    if output.exists():
        if not output.is_dir():
            raise error(f"{name} {str(output)!r} exists and is not a folder")
        if not os.access(output, os.W_OK | os.X_OK):
            raise error(f"output folder {str(output)!r} is not writable")
        return
    parent = output.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise error(f"output folder {str(output)!r} cannot be created: {str(parent)!r} is not writable")


def mount_point(path: str | Path) -> Path:
    """The mount point of the file system holding ``path`` (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists():
        p = p.parent
    while not os.path.ismount(p):
        p = p.parent
    return p


def disk_full(path: str | Path, attempted: int) -> DiskFullError:
    """The one "no space left" error: the device, the file, and how much it needed (at least the
    bytes it had written when the space ran out)."""
    mount = mount_point(Path(path).parent)
    free = shutil.disk_usage(mount).free / 2**20
    need = f"at least {attempted / 2**20:.1f} MB needed, " if attempted else ""
    return DiskFullError(f"no space left on {mount} writing {path}; {need}{free:.1f} MB free",
                         "free some space or choose another output folder (nothing was left half-written)")


class FolderLock:
    """An OS-level lock on a folder (``flock`` on ``FOLDER/.lock``), held while a process writes there.

    The kernel drops it when the process ends, however it ends, so a killed run leaves no stale lock;
    the file keeps the holder's pid for the message a second process gets. Readers take no lock.
    """

    NAME = ".lock"

    def __init__(self, folder: str | Path, what: str = "folder") -> None:
        self.folder, self.what = Path(folder), what
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / self.NAME, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise FolderLockedError(
                f"{self.folder} is in use: process {holder} is writing this {self.what}; wait for it to end "
                "(or stop it), or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
