"""Alignment: a similarity transform from 68 landmarks to the shipped mean-face template.

Geometry
--------
The template (``faceswap_lite/assets/mean_face_68.json``, derived by ``tools/make_template.py``) holds
the 68 iBUG points of a mean face in *template units*: the bounding box of the inner points 17–67
(eyebrows, eyes, nose, mouth) is the unit square [0, 1]².

A crop of ``size`` pixels shows the square of side ``s = 1 + 2 * padding`` template units centred
at ``(0.5, 0.5 - centering)``: ``padding`` is the margin around the inner-landmark box on every side,
as a fraction of that box; ``centering`` moves the window up (positive) so the crop keeps the forehead,
also in units of the box. The defaults (padding 0.4, centering 0.1) keep the chin and most of the
forehead in view.

Pixel coordinates follow OpenCV and dlib: integer coordinates are pixel centres, so an image of
width W spans x in [-0.5, W - 0.5]. ``cv2.warpAffine`` uses the same convention.

The transform is Umeyama's least-squares similarity (rotation, uniform scale, translation) from the
detected inner landmarks to the template's inner points [Umeyama 1991, "Least-squares estimation of
transformation parameters between two point patterns", IEEE TPAMI 13(4)]. How well the landmarks fit
the template after that transform (RMS residual in template units) is the landmark sanity check.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

TEMPLATE_FILE = "mean_face_68.json"
ALIGN_POINTS = slice(17, 68)  # inner points: eyebrows 17-26, nose 27-35, eyes 36-47, mouth 48-67
EYE_IMAGE_LEFT = slice(36, 42)  # the subject's right eye, on the image's left (iBUG numbering)
EYE_IMAGE_RIGHT = slice(42, 48)

DEFAULT_SIZE = 256
DEFAULT_PADDING = 0.4
DEFAULT_CENTERING = 0.05
# RMS residual of the inner landmarks after alignment, in template units (inner box = 1). Measured
# with dlib's predictor: the faces in tests/photos fit at 0.034-0.054 (0.051: open mouth), 78 upscaled
# 25-px LFW faces at median 0.036, max 0.077; landmarks in the wrong order fit at > 0.35. dlib's
# predictor falls back towards its mean shape on a non-face, so this check cannot catch those (the
# detector's score does); see docs/extract.md.
DEFAULT_MAX_FIT_ERROR = 0.1


@functools.lru_cache(maxsize=1)
def mean_face() -> np.ndarray:
    """The shipped 68-point mean face, float64 (68, 2), in template units (inner box = [0, 1]²)."""
    text = resources.files("faceswap_lite.assets").joinpath(TEMPLATE_FILE).read_text(encoding="utf-8")
    points = np.asarray(json.loads(text)["points"], dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"{TEMPLATE_FILE}: expected 68×2 points, got {points.shape}")
    points.setflags(write=False)
    return points


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` onto ``dst`` (both N×2); returns 2×3.

    Umeyama 1991, eqs. (34)-(43); the same algorithm as ``skimage.transform._geometric._umeyama``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n, dim = src.shape
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_d, dst_d = src - src_mean, dst - dst_mean
    cov = dst_d.T @ src_d / n  # eq. (38)
    d = np.ones(dim)
    if np.linalg.det(cov) < 0:  # eq. (39): avoid a reflection
        d[-1] = -1
    u, s, vt = np.linalg.svd(cov)
    if np.linalg.matrix_rank(cov) == 0:
        raise ValueError("umeyama: degenerate points (all identical)")
    rot = u @ np.diag(d) @ vt  # eq. (40)
    scale = (s @ d) / src_d.var(0).sum() if estimate_scale else 1.0  # eq. (42)
    t = dst_mean - scale * rot @ src_mean  # eq. (41)
    return np.hstack([scale * rot, t[:, None]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine to N×2 points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def template_in_crop(size: int = DEFAULT_SIZE, padding: float = DEFAULT_PADDING,
                     centering: float = DEFAULT_CENTERING) -> np.ndarray:
    """The 68 template points in crop pixels (68, 2) for a crop of ``size`` with this padding/centering."""
    if size < 16:
        raise ValueError(f"crop size must be at least 16 pixels, got {size}")
    if not -0.45 < padding <= 3.0:
        raise ValueError(f"padding must be in (-0.45, 3], got {padding}")
    side = 1.0 + 2.0 * padding  # template units shown by the crop
    corner = np.array([0.5 - side / 2, 0.5 - centering - side / 2])
    return (mean_face() - corner) * (size / side) - 0.5


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the eye on the image's left (points 36-41) and right (42-47) of 68 landmarks."""
    points = np.asarray(points, dtype=np.float64)
    return points[EYE_IMAGE_LEFT].mean(0), points[EYE_IMAGE_RIGHT].mean(0)


def alignment_matrix(landmarks: np.ndarray, size: int = DEFAULT_SIZE, padding: float = DEFAULT_PADDING,
                     centering: float = DEFAULT_CENTERING) -> np.ndarray:
    """2×3 similarity from source pixels to crop pixels, fitted on the inner landmarks (17-67)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise ValueError(f"alignment needs 68×2 landmarks, got {landmarks.shape}")
    dst = template_in_crop(size, padding, centering)
    return umeyama(landmarks[ALIGN_POINTS], dst[ALIGN_POINTS])


def fit_error(landmarks_crop: np.ndarray, size: int, padding: float, centering: float) -> float:
    """RMS distance of the aligned inner landmarks from the template's, in template units."""
    dst = template_in_crop(size, padding, centering)
    diff = np.asarray(landmarks_crop, dtype=np.float64)[ALIGN_POINTS] - dst[ALIGN_POINTS]
    pixels_per_unit = size / (1.0 + 2.0 * padding)
    return float(np.sqrt((diff**2).sum(1).mean()) / pixels_per_unit)


@dataclass
class AlignedFace:
    """One aligned crop and its geometry (all coordinates in crop pixels)."""

    crop: np.ndarray  # uint8 size×size×3 RGB
    matrix: np.ndarray  # 2×3, source pixels -> crop pixels
    landmarks: np.ndarray  # (68, 2) float32
    valid_polygon: np.ndarray  # (4, 2) float32: the source image's border
    fit_error: float  # RMS residual of the inner landmarks, template units


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int = DEFAULT_SIZE,
               padding: float = DEFAULT_PADDING, centering: float = DEFAULT_CENTERING,
               fill: tuple[int, ...] = (0, 0, 0)) -> AlignedFace:
    """Cut the aligned face of ``landmarks`` (68×2, source pixels) out of ``rgb`` (uint8 H×W×3).

    Crop pixels that fall outside the source image get the constant colour ``fill``; the source
    image's border, mapped into the crop, is returned as ``valid_polygon`` so training can mask the
    fill out. When the face is shrunk by more than 2×, the needed region is first reduced with
    area averaging (``cv2.INTER_AREA``) so the crop does not alias.
    """
    h, w = rgb.shape[:2]
    matrix = alignment_matrix(landmarks, size, padding, centering)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    warp_matrix, src = matrix, rgb
    if scale < 0.5:
        factor = 2.0 * scale  # the reduced region is then warped down by about 2×
        # Source region the crop can reach, with a margin of a few reduced pixels so the final
        # warp's interpolation never reaches the region's (zero) border inside the image.
        inv = cv2.invertAffineTransform(matrix)
        reach = transform_points(inv, [[-1, -1], [size, -1], [size, size], [-1, size]])
        margin = int(np.ceil(3.0 / factor))
        x0, y0 = np.floor(reach.min(0)).astype(int) - margin
        x1, y1 = np.ceil(reach.max(0)).astype(int) + margin + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            rw, rh = max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor))
            src = cv2.resize(rgb[y0:y1, x0:x1], (rw, rh), interpolation=cv2.INTER_AREA)
            fx, fy = rw / (x1 - x0), rh / (y1 - y0)
            # cv2.resize maps region pixel i to source x = x0 + (i + 0.5) / fx - 0.5; this is its inverse.
            to_region = np.array([[fx, 0, (0.5 - x0) * fx - 0.5], [0, fy, (0.5 - y0) * fy - 0.5]])
            warp_matrix = matrix @ np.vstack([cv2.invertAffineTransform(to_region), [0, 0, 1]])
    crop = cv2.warpAffine(src, warp_matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(int(c) for c in fill))
    lm_crop = transform_points(matrix, landmarks).astype(np.float32)
    corners = [[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]]
    polygon = transform_points(matrix, corners).astype(np.float32)
    return AlignedFace(crop=crop, matrix=matrix, landmarks=lm_crop, valid_polygon=polygon,
                       fit_error=fit_error(lm_crop, size, padding, centering))
