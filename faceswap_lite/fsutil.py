"""Files and folders: the one way faceswap-lite replaces a file (atomically: faces, checkpoints,
previews, config), the check before writing that an output folder can be written, the one
"disk full" message, and the lock that keeps a second process out of a folder."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import FaceswapLiteError

FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # out of space, over the file-size limit, over quota


class DiskFullError(FaceswapLiteError):
    """A write ran out of space (ENOSPC, or the file-size limit): nothing was left half-written.
    ``reason`` is the message without the advice, for callers that give their own."""

    def __init__(self, reason: str, advice: str) -> None:
        super().__init__(f"{reason}: {advice}")
        self.reason, self.advice = reason, advice

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Raised in extract's worker processes: the pool pickles it back with both arguments.
        return type(self), (self.reason, self.advice)


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
    """Raise ``error`` unless ``output`` is a writable folder or can be created; ``name`` is how the
    message calls it when it is a file (the option, e.g. ``-o``). Writability is probed for real
    (:func:`probe_writable`): ``os.access`` asks for the real user, not the one that writes, and
    says nothing of a full disk, which raises :class:`DiskFullError`."""
    output = Path(output)
    if _exists(output, output, error):
        if not output.is_dir():
            raise error(f"{name} {str(output)!r} exists and is not a folder")
        why = probe_writable(output)
        if why:
            raise error(f"output folder {str(output)!r} is not writable ({why}); choose another output folder")
        return
    parent = output.absolute().parent
    while not _exists(parent, output, error):
        parent = parent.parent
    if not parent.is_dir():
        raise error(f"output folder {str(output)!r} cannot be created: {str(parent)!r} is not a folder")
    why = probe_writable(parent)
    if why:
        raise error(f"output folder {str(output)!r} cannot be created: {str(parent)!r} is not writable "
                    f"({why}); choose another output folder")


def _exists(path: Path, output: Path, error: type[Exception]) -> bool:
    """Whether ``path`` exists; a folder on the way that cannot be searched is ``error``."""
    try:
        path.stat()
        return True
    except (FileNotFoundError, NotADirectoryError):  # a file on the way: said when the walk up reaches it
        return False
    except OSError as exc:
        raise error(f"output folder {str(output)!r} cannot be reached ({exc.strerror or exc}); choose "
                    "another output folder") from None


def probe_writable(folder: Path) -> str | None:
    """Why ``folder`` cannot be written (the system's words), or None: a hidden file is created,
    given one byte (a disk with no space left fails there) and removed. A full disk raises
    :class:`DiskFullError`."""
    probe = folder / f".faceswap-lite-probe-{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return _refused(exc, folder)
    try:
        os.write(fd, b"x")
    except OSError as exc:
        return _refused(exc, folder)
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)
    return None


def _refused(exc: OSError, folder: Path) -> str:
    if exc.errno in FULL:
        raise disk_full(folder, 0) from None
    return exc.strerror or str(exc)


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
    mount = mount_point(path)  # a file's folder's (it may not exist yet), or a folder's own
    free = shutil.disk_usage(mount).free / 2**20
    mb = attempted / 2**20
    need = f"at least {mb:.1f} MB needed, " if mb >= 0.1 else f"at least {mb:.2g} MB needed, "  # 40 kB: 0.038
    need = need if attempted else ""
    return DiskFullError(f"no space left on {mount} writing {path}; {need}{free:.1f} MB free",
                         "free some space or choose another output folder (nothing was left half-written)")


@contextlib.contextmanager
def full_disk_is_an_error(where: str | Path) -> Iterator[None]:
    """Inside, an ``OSError`` of a full disk from any write (a folder made, a library writing a
    file) leaves as the one :class:`DiskFullError`, naming the file it names or ``where``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        raise disk_full(exc.filename or where, 0) from None


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
