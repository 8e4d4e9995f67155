"""A face set decoded once: every usable face of a folder, resized to the model resolution.

:class:`FaceStore` reads a face-set folder with :mod:`faceswap_lite.faceset`, resizes every face to
the model resolution (``cv2.INTER_AREA``; landmarks and the valid polygon scaled alike) and keeps
them in one uint8 N×R×R×3 tensor (``cache=True``). Bad files are skipped, counted by reason in
:attr:`FaceStore.skipped` and named in one warning; a set with no usable face raises
:class:`~faceswap_lite.faceset.FaceSetError`. The cache is built in the main process before the
DataLoader starts its workers: with ``fork`` they share it copy-on-write (one contiguous tensor,
so reference counting never touches its pages); with ``spawn`` torch sends it through shared memory.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..faceset import (  # noqa: F401 - REASONS and the reasons are this module's API too
    BAD_METADATA,
    CORRUPT,
    EMPTY,
    NO_METADATA,
    NOT_PNG,
    REASONS,
    WRONG_SIZE,
    FaceSetError,
    list_faces,
    read_face,
    read_meta,
)
from .masks import RegionHulls
from .split import FaceKey

# The data log keeps one logger name wherever in data/ a line comes from (it prints in every line).
log = logging.getLogger("faceswap_lite.data.dataset")

_SHOW = 3  # file names shown per reason in the warning


def _resize(rgb: np.ndarray, resolution: int) -> np.ndarray:
    if rgb.shape[0] == resolution and rgb.shape[1] == resolution:
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if rgb.shape[0] > resolution else cv2.INTER_CUBIC
    return cv2.resize(rgb, (resolution, resolution), interpolation=interp)


def _scale_points(points: np.ndarray, scale: float) -> np.ndarray:
    """Pixel coordinates (pixel centres at integers) after resizing the crop by ``scale``."""
    return ((np.asarray(points, dtype=np.float32) + 0.5) * scale - 0.5).astype(np.float32)


class FaceStore:
    """A face set decoded and resized to ``resolution``: the images, landmarks and valid areas.

    Attributes:
        folder: the face-set folder.
        resolution: side R of the stored faces in pixels.
        paths: the usable face files (sorted by name), N of them.
        landmarks: float32 N×68×2, (x, y) in R×R pixels.
        valid_polygons: per face, float32 4×2 source-image border in R×R pixels, or None.
        hulls: per face, the :class:`~faceswap_lite.data.masks.RegionHulls` of its mask regions.
        keys: per face, its :class:`FaceKey` (name, source, frame) for the held-out split.
        geometry: the crop geometry the set was extracted with (``size``, ``padding``,
            ``centering``; the most common one when files differ).
        images: uint8 tensor N×R×R×3 (RGB) when ``cache``, else None (decoded on every access).
        skipped: ``{reason: [path, ...]}`` for the files that could not be used (see :data:`REASONS`).
        total: number of PNG files found (usable + skipped).
    """

    def __init__(self, folder: str | Path, resolution: int, cache: bool = True) -> None:
        self.folder = Path(folder)
        self.resolution = int(resolution)
        self.cache = bool(cache)
        self.skipped: dict[str, list[Path]] = {}
        files = list_faces(self.folder)
        self.total = len(files)
        if not files:
            raise FaceSetError(f"face set {str(self.folder)!r} holds no face PNGs; extract faces into it "
                               "with 'faceswap-lite extract'")
        start = last_log = time.perf_counter()
        paths: list[Path] = []
        landmarks: list[np.ndarray] = []
        polygons: list[np.ndarray | None] = []
        hulls: list[RegionHulls] = []
        keys: list[FaceKey] = []
        geometries: list[tuple[int, float, float]] = []
        # One buffer for every face (no second copy when stacking); rows of skipped files stay unused.
        buffer = np.empty((len(files), self.resolution, self.resolution, 3), np.uint8) if cache else None
        for k, path in enumerate(files):
            reason = self._read(path, buffer, len(paths))
            if isinstance(reason, str):
                self.skipped.setdefault(reason, []).append(path)
                continue
            lm, poly, region_hulls, meta = reason
            keys.append(FaceKey(path.name, meta.source, meta.frame))
            geometries.append((int(meta.size), float(meta.padding), float(meta.centering)))
            paths.append(path)
            landmarks.append(lm)
            polygons.append(poly)
            hulls.append(region_hulls)
            if time.perf_counter() - last_log > 10.0:
                last_log = time.perf_counter()
                log.info("face set %s: read %d of %d files", self.folder, k + 1, len(files))
        self.paths = paths
        self.landmarks = np.stack(landmarks) if landmarks else np.zeros((0, 68, 2), np.float32)
        self.valid_polygons = polygons
        self.hulls = hulls
        self.keys = keys
        self.geometry = _common_geometry(self.folder, geometries)
        self.images: torch.Tensor | None = None
        if buffer is not None and paths:
            self.images = torch.from_numpy(buffer[: len(paths)])
        if self.skipped:
            log.warning("face set %s: %s", self.folder, self.skipped_summary())
        if not paths:
            raise FaceSetError(f"face set {str(self.folder)!r}: none of its {self.total} PNG files can be "
                               f"used ({self.skipped_summary()})")
        log.info("face set %s: %d faces at %d px%s in %.1f s", self.folder, len(paths), self.resolution,
                 " decoded and cached" if cache else " indexed", time.perf_counter() - start)

    def _read(self, path: Path, buffer: np.ndarray | None,
              row: int) -> str | tuple[np.ndarray, np.ndarray | None, RegionHulls, Any]:
        """Read one file (its pixels into ``buffer[row]`` when caching): the scaled geometry, or why not."""
        try:
            if path.stat().st_size == 0:
                return EMPTY
            if buffer is not None:
                rgb, meta = read_face(path)
            else:
                meta = read_meta(path)
        except FaceSetError as exc:
            log.debug("skipping %s: %s", path, exc)
            return exc.reason or CORRUPT
        except OSError as exc:  # unreadable (permissions, vanished): skip like a corrupt file
            log.debug("skipping %s: %s", path, exc)
            return CORRUPT
        if meta.size <= 0:
            return BAD_METADATA
        scale = self.resolution / float(meta.size)
        lm = _scale_points(meta.landmarks, scale)
        poly = None if meta.valid_polygon is None else _scale_points(meta.valid_polygon, scale)
        try:
            region_hulls = RegionHulls.from_landmarks(lm)
        except ValueError:  # non-finite landmarks
            return BAD_METADATA
        if buffer is not None:
            buffer[row] = _resize(rgb, self.resolution)
        return lm, poly, region_hulls, meta

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def skipped_summary(self) -> str:
        """One line: how many files were skipped, by reason, naming a few of each."""
        parts = []
        for reason in sorted(self.skipped, key=lambda r: -len(self.skipped[r])):
            files = self.skipped[reason]
            names = ", ".join(p.name for p in files[:_SHOW]) + (f", +{len(files) - _SHOW} more"
                                                                 if len(files) > _SHOW else "")
            parts.append(f"{len(files)} {reason} ({names})")
        return f"skipped {self.num_skipped} of {self.total} files: " + "; ".join(parts)

    def image(self, i: int) -> np.ndarray:
        """Face ``i`` as uint8 RGB R×R×3 (a view of the cache, or freshly decoded and resized)."""
        if self.images is not None:
            view = self.images[i].numpy()
            view.flags.writeable = False  # the cache is shared by every sample (and worker)
            return view
        rgb, _ = read_face(self.paths[i])
        return _resize(rgb, self.resolution)

    @property
    def nbytes(self) -> int:
        """Bytes held by the image cache (0 without it)."""
        return 0 if self.images is None else self.images.numel()


def _common_geometry(folder: Path, geometries: list[tuple[int, float, float]]) -> dict[str, Any]:
    """The most common (size, padding, centering) of a face set; a mixed set is named in a warning."""
    if not geometries:
        return {}
    counts: dict[tuple[int, float, float], int] = {}
    for g in geometries:
        counts[g] = counts.get(g, 0) + 1
    best = max(counts, key=lambda g: counts[g])
    if len(counts) > 1:
        log.warning("face set %s mixes %d crop geometries (size, padding, centering); the model's is taken "
                    "as the most common, %s (%d of %d faces)", folder, len(counts), best, counts[best],
                    len(geometries))
    return {"size": best[0], "padding": best[1], "centering": best[2]}

