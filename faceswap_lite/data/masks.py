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

import functools

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


class RegionHulls:
    """The convex hulls of one face's regions (face, right eye, left eye, mouth), ready to draw.

    Build once per face (:meth:`from_landmarks`); each augmented sample then maps the few hull
    vertices by its affine (hulls stay hulls under an affine map) and fills them.
    """

    __slots__ = ("points", "splits")

    def __init__(self, points: np.ndarray, splits: np.ndarray) -> None:
        self.points = points  # float32 K×2: the four hulls' vertices, one after another
        self.splits = splits  # where hulls 2, 3 and 4 start in ``points``

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> RegionHulls:
        lm = np.asarray(landmarks, dtype=np.float32)
        if not np.all(np.isfinite(lm)):
            raise ValueError("landmarks must be finite")
        sets = [face_polygon(lm), *eye_polygons(lm), mouth_polygon(lm)]
        hulls = [cv2.convexHull(np.ascontiguousarray(p, dtype=np.float32)).reshape(-1, 2) for p in sets]
        return cls(np.concatenate(hulls), np.cumsum([len(h) for h in hulls[:-1]]))

    def draw(self, size: int, matrix: np.ndarray | None = None, face: bool = True) -> np.ndarray:
        """uint8 3×size×size planes: face, both eyes, mouth (255 inside, anti-aliased edges)."""
        fixed = np.round(_apply(matrix, self.points) * (1 << _SHIFT)).astype(np.int32)
        face_hull, right, left, mouth = np.split(fixed, self.splits)
        planes = np.zeros((3, size, size), dtype=np.uint8)
        if face:
            cv2.fillConvexPoly(planes[0], face_hull, 255, lineType=cv2.LINE_AA, shift=_SHIFT)
        cv2.fillConvexPoly(planes[1], right, 255, lineType=cv2.LINE_AA, shift=_SHIFT)
        cv2.fillConvexPoly(planes[1], left, 255, lineType=cv2.LINE_AA, shift=_SHIFT)
        cv2.fillConvexPoly(planes[2], mouth, 255, lineType=cv2.LINE_AA, shift=_SHIFT)
        return planes


def feather_kernel(blur: float, size: int) -> tuple[float, int] | None:
    """The Gaussian that feathers a ``size``-pixel mask by ``blur`` (a fraction of ``size``):
    (σ = blur·size/2 pixels, odd kernel side 2·ceil(3σ) + 1), or None when σ is under a quarter
    pixel (no visible feathering)."""
    sigma = blur * size / 2.0
    if sigma < 0.25:
        return None
    return sigma, 2 * int(np.ceil(3.0 * sigma)) + 1


def feather(mask: np.ndarray, blur: float) -> np.ndarray:
    """``mask`` (size×size, or size×size×C) blurred by :func:`feather_kernel`'s Gaussian, zero border
    (outside the crop is not face); returned as it is when the kernel is None."""
    kernel = feather_kernel(blur, mask.shape[0])
    if kernel is None:
        return mask
    sigma, k = kernel
    return cv2.GaussianBlur(mask, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)


def landmark_masks(
    landmarks: np.ndarray | RegionHulls,
    size: int,
    valid_polygon: np.ndarray | None = None,
    *,
    blur: float = 0.0,
    face: bool = True,
    matrix: np.ndarray | None = None,
) -> np.ndarray:
    """Face, eye and mouth masks for one face, 3×size×size float32 in [0, 1].

    Args:
        landmarks: 68×2 (x, y) in pixels of the size×size crop (before ``matrix``), or the face's
            :class:`RegionHulls` built from them (faster when the same face is drawn again).
        size: side of the output masks in pixels.
        valid_polygon: 4×2 source-image border in the same pixels, or None (the whole crop is image).
        blur: feathering, as a fraction of ``size`` (Gaussian σ = blur·size/2 pixels; 0 = hard edges).
        face: when False the face mask is the whole valid image area instead of the face region.
        matrix: optional 2×3 affine (crop pixels → output pixels), the augmentation's geometric
            transform; regions and borders are mapped through it, and output pixels that come from
            outside the crop are masked out.
    """
    hulls = landmarks if isinstance(landmarks, RegionHulls) else RegionHulls.from_landmarks(landmarks)
    planes = hulls.draw(size, matrix, face)

    if feather_kernel(blur, size) is not None:
        hwc = feather(np.ascontiguousarray(planes.transpose(1, 2, 0)), blur)
        planes = np.ascontiguousarray(hwc.transpose(2, 0, 1))  # strided ufuncs below would be ~50× slower

    valid = _valid_u8(size, valid_polygon, matrix)
    if not face:
        planes[0] = 255 if valid is None else valid * np.uint8(255)
    elif valid is not None:
        planes[0] *= valid
    np.minimum(planes[1:], planes[0:1], out=planes[1:])
    return planes.astype(np.float32) * np.float32(1.0 / 255.0)


def valid_area(size: int, valid_polygon: np.ndarray | None = None,
               matrix: np.ndarray | None = None) -> np.ndarray | None:
    """Output pixels that hold real image: 0/1 float32 size×size, or None when all of them do.

    Without ``matrix``: the pixels whose centre lies inside ``valid_polygon`` (exact). With it: the
    pixels whose nearest source pixel (through the inverse of ``matrix``) lies inside the crop and
    inside the polygon (outside the crop ``warpAffine`` only replicates the border).
    """
    valid = _valid_u8(size, valid_polygon, matrix)
    return None if valid is None else valid.astype(np.float32)


def _valid_u8(size: int, valid_polygon: np.ndarray | None, matrix: np.ndarray | None) -> np.ndarray | None:
    base = None
    if valid_polygon is not None:
        base = _polygon_raster(size, np.asarray(valid_polygon, dtype=np.float32).reshape(-1, 2).tobytes())
    if matrix is None:
        return base
    src = base if base is not None else _ones(size)
    return cv2.warpAffine(src, np.asarray(matrix, dtype=np.float64), (size, size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@functools.lru_cache(maxsize=8)
def _ones(size: int) -> np.ndarray:
    out = np.ones((size, size), dtype=np.uint8)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=1024)  # faces near an image border keep their raster (R² bytes each)
def _polygon_raster(size: int, polygon: bytes) -> np.ndarray:
    """uint8 0/1 size×size: pixel centres inside the convex hull of the float32 points in ``polygon``."""
    poly = np.frombuffer(polygon, dtype=np.float32).reshape(-1, 2)
    out = np.zeros((size, size), dtype=np.uint8)
    if len(poly) >= 3 and np.all(np.isfinite(poly)):
        hull = cv2.convexHull(poly).reshape(-1, 2).astype(np.float64)
        if len(hull) >= 3:
            xs = np.arange(size, dtype=np.float64)[None, :]
            ys = np.arange(size, dtype=np.float64)[:, None]
            inside = np.ones((size, size), dtype=bool)
            x0, y0 = hull[:, 0], hull[:, 1]
            x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
            orient = np.sign(np.sum(x0 * y1 - x1 * y0))  # +1 or -1 by winding
            for a, b, c, d in zip(x0, y0, x1 - x0, y1 - y0):
                inside &= orient * (c * (ys - b) - d * (xs - a)) >= 0
            out[inside] = 1
    out.flags.writeable = False
    return out
