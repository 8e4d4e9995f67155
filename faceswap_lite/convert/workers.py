"""The detector workers of convert: find the faces of one frame (68 source landmarks each).

A module of its own, importing only extract's detector API, so a spawned worker process starts in
about a second: importing the pipeline (torch, PyAV) would cost each worker several.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import cv2
import numpy as np

from ..extract.detect import DetectorSpec, detector_for, find_faces

_DETECTOR: Any = None
_REFERENCES: tuple[np.ndarray, float] | None = None


def init_worker(spec: DetectorSpec, references: np.ndarray | None, threshold: float, pooled: bool = True) -> None:
    """Build this process's detector (dlib objects cannot be pickled) and keep the --identity references."""
    global _DETECTOR, _REFERENCES
    if pooled:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's business
        cv2.setNumThreads(1)  # one process per core already
        if references is not None:  # the identity network runs (torch is imported only then)
            from .. import identity

            identity.set_threads(1)
    _DETECTOR = detector_for(spec)
    _REFERENCES = None if references is None else (references, threshold)


def detect_faces(rgb: np.ndarray) -> tuple[list[np.ndarray], float]:
    """The 68 source landmarks of each face in ``rgb`` (only the --identity person's, when given),
    and the seconds it took."""
    start = time.perf_counter()
    found = find_faces(_DETECTOR, rgb)
    if _REFERENCES is not None:
        from .. import identity

        refs, threshold = _REFERENCES
        found = [lm for lm, d in zip(found, identity.descriptors(rgb, found)) if identity.matches(d, refs, threshold)]
    return found, time.perf_counter() - start
