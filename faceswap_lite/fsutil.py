"""Atomic file writes: the one way faceswap-lite replaces a file (faces, checkpoints, previews, config);
and the check, before writing, that an output folder can be written."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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
    ``tempfile.mkstemp``'s 0600.
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
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)
    return path


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
