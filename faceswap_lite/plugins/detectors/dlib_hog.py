"""dlib's HOG frontal face detector (the default): fast on CPU, frontal and near-frontal faces.

Dalal & Triggs HOG features with a linear SVM, as trained by dlib (``get_frontal_face_detector``).
It finds faces of about 80×80 pixels and larger; each ``upsample`` step doubles the image first, so
faces half as big are found, at about 4× the time.

>>> from faceswap_lite.registry import DETECTORS
>>> det = DETECTORS.build("dlib-hog", {"upsample": 0})   # doctest: +SKIP
>>> det.detect(rgb)                                        # doctest: +SKIP
[Detection(box=(179.0, 83.0, 266.0, 170.0), score=1.53)]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceswap_lite.dlib_models import DlibLandmarks68, import_dlib
from faceswap_lite.errors import PluginError
from faceswap_lite.extract.detect import Detection
from faceswap_lite.registry import register_detector


@register_detector("dlib-hog")
class DlibHog(DlibLandmarks68):
    """dlib HOG frontal face detector (default; fast on CPU). 68 landmarks from dlib's shape predictor."""

    def __init__(self, upsample: int = 1, threshold: float = 0.5) -> None:
        """``upsample``: times to double the image before detecting (0: faces >= ~80 px, 1: >= ~40 px).
        ``threshold``: dlib's ``adjust_threshold``: detections scoring below it are dropped. dlib's
        own default, 0, keeps weak ones such as the mission patch on the astronaut's suit in
        tests/photos (score 0.1); the real faces there score 1.2 to 2.4.
        """
        if upsample < 0 or upsample > 4:
            raise PluginError(f"detector 'dlib-hog': upsample must be 0..4, got {upsample}")
        self.upsample = upsample
        self.threshold = threshold
        self._detector: Any = import_dlib().get_frontal_face_detector()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in ``rgb`` (uint8 H×W×3): boxes in source pixels, SVM scores (> threshold)."""
        rects, scores, _ = self._detector.run(rgb, self.upsample, self.threshold)
        return [Detection((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(s))
                for r, s in zip(rects, scores)]
