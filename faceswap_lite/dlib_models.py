"""dlib and its model files: the import, the files' paths and the 68-point shape predictor.

The dlib detector plugins, :mod:`faceswap_lite.identity` and the evaluate panel share them (here,
so that no core module imports a plugin). dlib comes from the ``dlib-bin`` wheel; its models from
the ``face-recognition-models`` package. That package's ``__init__`` imports ``pkg_resources`` (gone
from recent setuptools), so the files are found with ``importlib.util.find_spec`` without
importing it.

The 68-point model (``shape_predictor_68_face_landmarks.dat``, dlib's ``shape_predictor`` of Kazemi &
Sullivan 2014) was trained on the iBUG 300-W data set, whose authors license it for non-commercial
use only: see docs/extract.md.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FaceswapLiteError

MODELS_PACKAGE = "face_recognition_models"
SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
MMOD_DETECTOR = "mmod_human_face_detector.dat"

_PREDICTOR: Any = None


def import_dlib() -> Any:
    """Import dlib, or say which wheel provides it."""
    try:
        import dlib
    except ImportError as exc:
        raise FaceswapLiteError(
            f"the dlib detectors need dlib ({exc}); install it with: pip install dlib-bin"
        ) from None
    return dlib


def model_path(filename: str) -> Path:
    """Path of one of the ``face-recognition-models`` files (without importing that package)."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FaceswapLiteError(
            f"the dlib model files come from the package face-recognition-models, which is not "
            f"installed; install it with: pip install face-recognition-models (to find {filename})"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "models" / filename
        if path.is_file():
            return path
    raise FaceswapLiteError(f"{filename} is missing from the installed face-recognition-models package; "
                            "reinstall it: pip install --force-reinstall face-recognition-models")


def shape_predictor() -> Any:
    """dlib's 68-point shape predictor, loaded once per process (about 100 MB, a few seconds)."""
    global _PREDICTOR
    if _PREDICTOR is None:
        dlib = import_dlib()
        _PREDICTOR = dlib.shape_predictor(str(model_path(SHAPE_PREDICTOR_68)))
    return _PREDICTOR


def landmarks_in_box(rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The 68 landmarks (float32 (68, 2), source pixels) of the face in ``box`` (x0, y0, x1, y1)."""
    dlib = import_dlib()
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    shape = shape_predictor()(rgb, dlib.rectangle(x0, y0, x1, y1))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


class DlibLandmarks68:
    """Mixin for a detector plugin: 68 iBUG landmarks from dlib's shape predictor for a box."""

    def landmarks(self, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """The 68 landmarks (float32 (68, 2), source pixels) of the face in ``box`` (x0, y0, x1, y1)."""
        return landmarks_in_box(rgb, box)
