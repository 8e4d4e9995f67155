"""Faces from a face set (``--faces``): the source landmarks extract found, by source, frame and face."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..extract.align import transform_points
from ..extract.sources import Source
from ..faceset import FaceSetError, list_faces, read_meta
from .options import ConvertError

log = logging.getLogger(__name__)


@dataclass
class FaceIndex:
    """Source landmarks of every face in a face set: ``faces[(source path, frame)] = [(face, 68×2)]``."""

    faces: dict[tuple[str, int], list[tuple[int, np.ndarray]]]
    by_name: dict[str, set[str]]  # file name -> source paths, to match inputs given another way

    @classmethod
    def read(cls, folder: str | Path) -> FaceIndex:
        faces: dict[tuple[str, int], list[tuple[int, np.ndarray]]] = {}
        by_name: dict[str, set[str]] = {}
        for path in list_faces(folder):
            try:
                meta = read_meta(path)
            except FaceSetError as exc:
                log.warning("--faces: %s; skipped", exc.message)
                continue
            src = str(Path(meta.source).resolve())
            to_source = cv2.invertAffineTransform(np.asarray(meta.matrix, dtype=np.float64))
            lm = transform_points(to_source, meta.landmarks)
            faces.setdefault((src, int(meta.frame or 0)), []).append((meta.face_index, lm))
            by_name.setdefault(Path(meta.source).name, set()).add(src)
        if not faces:
            raise ConvertError(f"--faces {str(folder)!r}: no readable face files; extract them with "
                               "'faceswap-lite extract' from these inputs")
        for items in faces.values():
            items.sort(key=lambda f: f[0])
        return cls(faces, by_name)

    def key_of(self, source: Source) -> str | None:
        """The face set's name for ``source``: its resolved path, else a unique file-name match."""
        real = str(source.path.resolve())
        if any(k[0] == real for k in self.faces):
            return real
        same = self.by_name.get(source.path.name, set())
        return next(iter(same)) if len(same) == 1 else None

    def landmarks(self, key: str | None, frame: int) -> list[np.ndarray]:
        return [] if key is None else [lm for _, lm in self.faces.get((key, frame), [])]
