"""The detector workers of convert: find the faces of one frame (68 source landmarks each).

A module of its own, importing only extract's detector API, so a spawned worker process
(:class:`faceswap_lite.frames.Workers`) starts in about a second: importing the pipeline (torch,
PyAV) would cost each worker several.
"""

from __future__ import annotations

import time

import numpy as np

from .. import identity
from ..extract.detect import DetectorSpec, detector_for, find_faces


class FaceFinder:
    """A detector (one per process: dlib objects cannot be pickled) and the --identity references."""

    def __init__(self, spec: DetectorSpec, references: np.ndarray | None, threshold: float) -> None:
        self.detector = detector_for(spec)
        self.references = references
        self.threshold = threshold

    def find(self, rgb: np.ndarray) -> tuple[list[np.ndarray], float]:
        """The 68 source landmarks of each face in ``rgb`` (only the --identity person's, when given),
        and the seconds it took."""
        start = time.perf_counter()
        found = find_faces(self.detector, rgb)
        if self.references is not None:
            found = [lm for lm, d in zip(found, identity.descriptors(rgb, found))
                     if identity.matches(d, self.references, self.threshold)]
        return found, time.perf_counter() - start
