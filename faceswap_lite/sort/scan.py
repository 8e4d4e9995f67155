"""Read a face set for sort and faceset: each usable face's metadata and the measures asked for.

Files that cannot be used are skipped and counted by reason, as training does (the reasons of
:class:`~faceswap_lite.faceset.FaceSetError`). Pixels are decoded only when a measure needs them
(sharpness, or a descriptor missing from an older face set), one face at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import identity
from ..faceset import CORRUPT, FaceMeta, FaceSetError, list_faces, read_face, read_meta
from .measures import sharpness

log = logging.getLogger(__name__)



@dataclass
class Face:
    """One usable face of the set."""

    path: Path
    meta: FaceMeta
    sharpness: float | None = None  # when asked for
    descriptor: np.ndarray | None = None  # (128,) when asked for: stored, or computed here


@dataclass
class Scan:
    """A face set as read: its usable faces (sorted by name) and the files skipped, by reason."""

    folder: Path
    faces: list[Face] = field(default_factory=list)
    skipped: dict[str, list[Path]] = field(default_factory=dict)
    computed: int = 0  # descriptors computed on the fly (faces from before descriptors)

    @property
    def total(self) -> int:
        return len(self.faces) + sum(len(v) for v in self.skipped.values())

    def skipped_lines(self) -> list[str]:
        """One line per reason: how many files, and the first few names."""
        out = []
        for reason, paths in sorted(self.skipped.items(), key=lambda kv: -len(kv[1])):
            names = ", ".join(p.name for p in paths[:3]) + (f", +{len(paths) - 3} more" if len(paths) > 3 else "")
            out.append(f"{len(paths)} file{'' if len(paths) == 1 else 's'} skipped: {reason} ({names})")
        return out

    def descriptors(self) -> np.ndarray:
        """N×128 float32 (needs the scan to have been made with ``descriptors=True``)."""
        if not self.faces:
            return np.zeros((0, 128), np.float32)
        return np.stack([f.descriptor for f in self.faces])


def scan_faceset(folder: str | Path, sharp: bool = False, descriptors: bool = False) -> Scan:
    """Read every face of ``folder``; with ``sharp`` measure each one's sharpness, with
    ``descriptors`` get each one's identity descriptor. Raises FaceSetError for a missing folder or
    one without a usable face."""
    scan = Scan(Path(folder))
    for path in list_faces(scan.folder):
        face, reason = _read(path, sharp, descriptors, scan)
        if face is None:
            scan.skipped.setdefault(reason, []).append(path)
        else:
            scan.faces.append(face)
    if scan.skipped:  # the commands print them (Scan.skipped_lines)
        log.info("face set %s: %s", scan.folder, "; ".join(scan.skipped_lines()))
    if not scan.faces:
        raise FaceSetError(f"face set {str(folder)!r} holds no usable face ({scan.total} PNG files)")
    return scan


def _read(path: Path, sharp: bool, descriptors: bool, scan: Scan) -> tuple[Face | None, str]:
    """One file, read once: its metadata, with its pixels when a measure needs them."""
    try:
        rgb, meta = read_face(path) if sharp else (None, read_meta(path))
        face = Face(path, meta, descriptor=identity.face_descriptor(meta, rgb, path) if descriptors else None)
    except FaceSetError as exc:  # the reasons training counts (faceset.REASONS)
        log.debug("skipping %s: %s", path, exc)
        return None, exc.reason or CORRUPT
    except OSError as exc:  # unreadable (permissions, vanished): skip like a corrupt file
        log.debug("skipping %s: %s", path, exc)
        return None, CORRUPT
    if sharp:
        face.sharpness = sharpness(rgb, meta)
    scan.computed += descriptors and meta.descriptor is None
    return face, ""
