"""What sort measures on one face: sharpness, head pose and size, from its crop and metadata.

All take a face-set face (:class:`~faceswap_lite.faceset.FaceMeta`, and for :func:`sharpness` its
uint8 RGB crop) and return a float.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from ..extract.align import mean_face
from ..faceset import FaceMeta

FACE_OUTLINE = slice(0, 27)  # jaw 0-16 and brows 17-26: their hull is the face
EYE_CORNERS = (36, 45)  # outer corners, image left and right (iBUG numbering)
EYE_LINE = [36, 39, 42, 45]
MOUTH_CORNERS = [48, 54]
NOSE_TIP = 30
MASK_ERODE = 2  # px: keep the 3×3 Laplacian off the mask's edge (and the fill colour's)


def sharpness(rgb: np.ndarray, meta: FaceMeta) -> float:
    """Variance of the Laplacian of the grey crop inside the face (the hull of the jaw and brows,
    cut to the real image by ``valid_polygon``): lower is blurrier (Pech-Pacheco et al. 2000,
    "Diatom autofocusing in brightfield microscopy: a comparative study", ICPR)."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    laplacian = cv2.Laplacian(grey, cv2.CV_32F)
    mask = np.zeros(grey.shape, np.uint8)
    hull = cv2.convexHull(np.asarray(meta.landmarks[FACE_OUTLINE], dtype=np.float32))
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1)
    if meta.valid_polygon is not None:
        valid = np.zeros_like(mask)
        cv2.fillConvexPoly(valid, np.round(np.asarray(meta.valid_polygon)).astype(np.int32), 1)
        mask &= valid
    mask = cv2.erode(mask, np.ones((2 * MASK_ERODE + 1,) * 2, np.uint8))
    values = laplacian[mask > 0]
    return float(values.var()) if values.size else 0.0


def roll(meta: FaceMeta) -> float:
    """Degrees the face is turned in the source image's plane, clockwise as seen (the alignment
    rotated it back by as much)."""
    m = np.asarray(meta.matrix, dtype=np.float64)
    return -math.degrees(math.atan2(m[1, 0], m[0, 0]))


def yaw(meta: FaceMeta) -> float:
    """How far the nose tip sits from the midline of the outer eye corners, in half eye-corner
    distances (crop pixels, so roll is already undone): 0 frontal, > 0 turned towards the image's
    right, < 0 towards its left; a mirrored face gives the opposite value. Dimensionless, not
    degrees: it grows about as tan(yaw) for a rigid head."""
    lm = np.asarray(meta.landmarks, dtype=np.float64)
    left, right = lm[EYE_CORNERS[0], 0], lm[EYE_CORNERS[1], 0]
    half = (right - left) / 2.0
    return float((lm[NOSE_TIP, 0] - (left + right) / 2.0) / half) if half > 0 else 0.0


def pitch(meta: FaceMeta) -> float:
    """How much higher the nose tip sits between the eye line and the mouth corners than on the
    shipped mean face, as a share of the eye-to-mouth height: 0 like the mean face, > 0 looking up,
    < 0 looking down. Dimensionless; faces differ by a few hundredths at the same pose."""
    return _mean_nose_height() - _nose_height(np.asarray(meta.landmarks, dtype=np.float64))


@functools.lru_cache(maxsize=1)
def _mean_nose_height() -> float:
    return _nose_height(mean_face())


def _nose_height(lm: np.ndarray) -> float:
    eyes, mouth = lm[EYE_LINE, 1].mean(), lm[MOUTH_CORNERS, 1].mean()
    return float((lm[NOSE_TIP, 1] - eyes) / (mouth - eyes)) if mouth != eyes else 0.0


def face_size(meta: FaceMeta) -> float:
    """Side of the eyebrows-to-mouth box (landmarks 17-67) in source pixels: how big the face was
    in its photo or frame (the crop's scale undone)."""
    m = np.asarray(meta.matrix, dtype=np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))  # crop pixels per source pixel
    return meta.size / (1.0 + 2.0 * meta.padding) / scale if scale > 0 else 0.0
