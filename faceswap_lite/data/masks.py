"""Landmark masks: face, eyes and mouth regions drawn from a face's 68 stored landmarks.

Landmarks follow the 68-point iBUG 300-W layout (as dlib's predictor gives them): jaw 0–16,
eyebrows 17–26, nose 27–35, eyes 36–41 and 42–47, outer lip 48–59, inner lip 60–67.

Regions (all convex, so a region under an affine map is the hull of the mapped points; augmentation
maps the polygons rather than warping mask images, which keeps edges exact and is cheaper):

* **face**: hull of the jaw line (0–16) and the eyebrows raised over the forehead: each brow point
  moves ``FOREHEAD`` × face height along the face's up direction (chin 8 → nose bridge 27).
* **eyes**: hull of each eye (36–41, 42–47), grown by ``EYE_MARGIN`` × that eye's width on every
  side (a Minkowski sum with an octagon, i.e. a dilation that does not depend on the resolution).
* **mouth**: hull of the outer lip (48–59), grown by ``MOUTH_MARGIN`` × the mouth width.

The face mask is then cut to where the crop holds real image: inside ``valid_polygon`` (the source
image's border in crop pixels, from the face-set metadata) and inside the crop itself after an
augmentation moved it. That cut is a hard edge (fill pixels get exactly 0); the region edges are
feathered by a Gaussian blur of σ = ``blur`` × size / 2 pixels first. Eye and mouth masks never
exceed the face mask.

Masks are float32 in [0, 1], stacked as 3×H×W in the order :data:`MASK_NAMES`.
"""

from __future__ import annotations

import cv2
import numpy as np

MASK_NAMES = ("face", "eyes", "mouth")

JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
RIGHT_EYE = np.arange(36, 42)  # the subject's right eye: image left in a frontal face
LEFT_EYE = np.arange(42, 48)
OUTER_LIP = np.arange(48, 60)
CHIN, NOSE_BRIDGE = 8, 27

# Brows are raised by this share of the chin→nose-bridge distance to cover the forehead (faceswap's
# "extended" mask raises them by a comparable amount; see lib/align/aligned_mask.py there).
FOREHEAD = 0.35
EYE_MARGIN = 0.25  # eye hull dilation, share of the eye's width (corner 36 → corner 39)
MOUTH_MARGIN = 0.1  # mouth hull dilation, share of the mouth's width (corner 48 → corner 54)

_SHIFT = 4  # fixed-point bits for sub-pixel polygon rasterisation
_OCTAGON = np.array([[np.cos(a), np.sin(a)] for a in np.arange(8) * np.pi / 4], dtype=np.float32)


def face_polygon(landmarks: np.ndarray) -> np.ndarray:
    """Points whose convex hull is the face region: jaw plus brows raised over the forehead.

    ``landmarks``: 68×2 (x, y) pixels. Returns K×2 float32 pixels (not yet a hull).
    """
    lm = np.asarray(landmarks, dtype=np.float32)
    up = lm[NOSE_BRIDGE] - lm[CHIN]
    height = float(np.hypot(*up))
    if height < 1e-6:
        return lm[np.r_[JAW, BROWS]]
    forehead = lm[BROWS] + up / height * (FOREHEAD * height)
    return np.concatenate([lm[JAW], lm[BROWS], forehead])


def _grown(points: np.ndarray, corner_a: int, corner_b: int, margin: float, lm: np.ndarray) -> np.ndarray:
    width = float(np.hypot(*(lm[corner_b] - lm[corner_a])))
    r = margin * width
    return (points[:, None, :] + r * _OCTAGON[None]).reshape(-1, 2)


def eye_polygons(landmarks: np.ndarray) -> list[np.ndarray]:
    """Two point sets (right eye, left eye) whose hulls are the dilated eye regions, float32 pixels."""
    lm = np.asarray(landmarks, dtype=np.float32)
    return [_grown(lm[RIGHT_EYE], 36, 39, EYE_MARGIN, lm), _grown(lm[LEFT_EYE], 42, 45, EYE_MARGIN, lm)]


def mouth_polygon(landmarks: np.ndarray) -> np.ndarray:
    """Point set whose hull is the (slightly dilated) outer-lip region, float32 pixels."""
    lm = np.asarray(landmarks, dtype=np.float32)
    return _grown(lm[OUTER_LIP], 48, 54, MOUTH_MARGIN, lm)


def _apply(matrix: np.ndarray | None, points: np.ndarray) -> np.ndarray:
    if matrix is None:
        return points
    m = np.asarray(matrix, dtype=np.float32)
    return points @ m[:, :2].T + m[:, 2]


def _fill_hull(canvas: np.ndarray, points: np.ndarray, antialias: bool = True) -> None:
    if not np.all(np.isfinite(points)):
        return
    hull = cv2.convexHull(np.round(points * (1 << _SHIFT)).astype(np.int32))
    cv2.fillConvexPoly(canvas, hull, 255, lineType=cv2.LINE_AA if antialias else cv2.LINE_8, shift=_SHIFT)


def landmark_masks(
    landmarks: np.ndarray,
    size: int,
    valid_polygon: np.ndarray | None = None,
    *,
    blur: float = 0.0,
    face: bool = True,
    matrix: np.ndarray | None = None,
) -> np.ndarray:
    """Face, eye and mouth masks for one face, 3×size×size float32 in [0, 1].

    Args:
        landmarks: 68×2 (x, y) in pixels of the size×size crop (before ``matrix``).
        size: side of the output masks in pixels.
        valid_polygon: 4×2 source-image border in the same pixels, or None (the whole crop is image).
        blur: feathering, as a fraction of ``size`` (Gaussian σ = blur·size/2 pixels; 0 = hard edges).
        face: when False the face mask is the whole valid image area instead of the face region.
        matrix: optional 2×3 affine (crop pixels → output pixels), the augmentation's geometric
            transform; regions and borders are mapped through it, and output pixels that come from
            outside the crop are masked out.
    """
    lm = np.asarray(landmarks, dtype=np.float32)
    planes = np.zeros((3, size, size), dtype=np.uint8)
    if face:
        _fill_hull(planes[0], _apply(matrix, face_polygon(lm)))
    for eye in eye_polygons(lm):
        _fill_hull(planes[1], _apply(matrix, eye))
    _fill_hull(planes[2], _apply(matrix, mouth_polygon(lm)))

    sigma = blur * size / 2.0
    if sigma >= 0.25:
        k = 2 * int(np.ceil(3.0 * sigma)) + 1
        hwc = cv2.GaussianBlur(np.ascontiguousarray(planes.transpose(1, 2, 0)), (k, k), sigmaX=sigma,
                               sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
        planes = hwc.transpose(2, 0, 1)
    masks = planes.astype(np.float32) * np.float32(1.0 / 255.0)

    valid = valid_area(size, valid_polygon, matrix)
    if not face:
        masks[0] = 1.0 if valid is None else valid
    elif valid is not None:
        masks[0] *= valid
    np.minimum(masks[1:], masks[0:1], out=masks[1:])
    return masks


def valid_area(size: int, valid_polygon: np.ndarray | None = None,
               matrix: np.ndarray | None = None) -> np.ndarray | None:
    """Output pixels that hold real image: 0/1 float32 size×size, or None when all of them do.

    A pixel counts when its centre lies inside ``valid_polygon`` (mapped by ``matrix``) and, when
    ``matrix`` is given, inside the mapped crop square ``[-0.5, size - 0.5]²`` (outside it
    ``warpAffine`` only replicates the border). Exact per pixel centre, so fill is always 0.
    """
    polygons = []
    if valid_polygon is not None:
        polygons.append(_apply(matrix, np.asarray(valid_polygon, dtype=np.float32).reshape(-1, 2)))
    if matrix is not None:
        e = size - 0.5
        square = np.array([[-0.5, -0.5], [e, -0.5], [e, e], [-0.5, e]], dtype=np.float32)
        polygons.append(_apply(matrix, square))
    if not polygons:
        return None
    xs = np.arange(size, dtype=np.float32)[None, :]
    ys = np.arange(size, dtype=np.float32)[:, None]
    inside = np.ones((size, size), dtype=bool)
    for poly in polygons:
        if not np.all(np.isfinite(poly)):
            return np.zeros((size, size), dtype=np.float32)
        hull = cv2.convexHull(poly.astype(np.float32)).reshape(-1, 2).astype(np.float64)
        if len(hull) < 3:
            return np.zeros((size, size), dtype=np.float32)
        x0, y0 = hull[:, 0], hull[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        orient = np.sign(np.sum(x0 * y1 - x1 * y0))  # +1 or -1 by winding
        for a, b, c, d in zip(x0, y0, x1 - x0, y1 - y0):
            inside &= orient * (c * (ys - b) - d * (xs - a)) >= 0
    return inside.astype(np.float32)
