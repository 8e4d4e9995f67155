"""Blend a swapped face back into its frame: mask, colour match, inverse warp, float alpha blend.

Everything here works on one face in the geometry of its aligned crop (S×S, where the 2×3 matrix
maps source pixels to crop pixels) and on the frame as RGB uint8 H×W×3. Only the pixels under the
warped mask change: where the mask is 0 the frame keeps its exact values.

The colour and blend modes are the tables :data:`COLOR_MODES` and :data:`BLEND_MODES` (name ->
function): convert's options take their choices from the keys, so a new mode is one row.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def face_mask(landmarks: np.ndarray, size: int, valid_polygon: np.ndarray | None = None) -> np.ndarray:
    """The landmark face mask training used (jaw hull raised over the forehead), size×size float32 0..1.

    ``landmarks``: 68×2 crop pixels; ``valid_polygon``: the source image's border in crop pixels
    (the crop outside it is fill colour, never blended back).
    """
    # Imported here, as in refine_mask: faceswap_lite.data imports torch, and the CLI imports this
    # module (through convert's options) for the mode tables alone.
    from ..data.masks import landmark_masks

    return landmark_masks(landmarks, size, valid_polygon, blur=0.0)[0]


def refine_mask(mask: np.ndarray, erode: float, blur: float) -> np.ndarray:
    """Erode (negative: dilate) by ``erode`` × size pixels, then feather with a Gaussian of
    σ = ``blur`` × size / 2 (the same units as ``mask.blur`` in the training config)."""
    from ..data.masks import feather

    size = mask.shape[0]
    out = mask.astype(np.float32, copy=True)
    radius = int(round(abs(erode) * size))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = (cv2.erode if erode > 0 else cv2.dilate)(out, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return np.clip(feather(out, blur), 0.0, 1.0)


def match_color(face: np.ndarray, target: np.ndarray, mask: np.ndarray, mode: str = "avg") -> np.ndarray:
    """Match ``face``'s colours to ``target``'s inside ``mask`` (all S×S; images float32 RGB 0..1)
    by the :data:`COLOR_MODES` entry ``mode``."""
    return COLOR_MODES[mode](face, target, mask)


def _lab_mean_shift(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``avg``: shift the mask-weighted mean of each Lab channel onto the target's (a colour cast and
    brightness fix that keeps the face's own shading)."""
    w = mask[..., None]
    total = float(w.sum())
    if total < 1e-6:
        return face
    lab_f = cv2.cvtColor(face, cv2.COLOR_RGB2Lab)
    lab_t = cv2.cvtColor(target, cv2.COLOR_RGB2Lab)
    shift = ((lab_t - lab_f) * w).reshape(-1, 3).sum(0) / total
    return np.clip(cv2.cvtColor(lab_f + shift.astype(np.float32), cv2.COLOR_Lab2RGB), 0.0, 1.0)


def _histogram_match(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``hist``: per-channel histogram matching of the RGB values inside the mask (mask > 0.5)."""
    inside = mask > 0.5
    if inside.sum() < 16:
        return face
    out = face.copy()
    for c in range(3):
        out[..., c] = _match_channel(face[..., c], target[..., c][inside], face[..., c][inside])
    return out


def _match_channel(channel: np.ndarray, target_values: np.ndarray, source_values: np.ndarray) -> np.ndarray:
    """Map ``channel`` through the CDF of ``source_values`` onto the quantiles of ``target_values``."""
    src_sorted = np.sort(source_values)
    quantiles = np.searchsorted(src_sorted, channel, side="right") / len(src_sorted)
    return np.quantile(target_values, np.clip(quantiles, 0.0, 1.0)).astype(np.float32)


def paste(frame: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray,
          blend: str = "alpha") -> bool:
    """Warp ``face`` (S×S×3 float32 0..1) and ``mask`` (S×S) back into ``frame`` (uint8, in place).

    ``matrix``: 2×3 source -> crop. Only the frame's region the crop covers is touched, and in it
    only pixels under the mask: ``frame·(1 − a) + face·a`` computed in float and rounded, after the
    :data:`BLEND_MODES` entry ``blend`` prepared the face. False when the crop lies outside the frame.
    """
    h, w = frame.shape[:2]
    size = face.shape[0]
    inv = cv2.invertAffineTransform(matrix)
    corners = np.array([[-1, -1], [size, -1], [size, size], [-1, size]], dtype=np.float64)
    reach = corners @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.maximum(np.floor(reach.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(reach.max(0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return False
    # region pixel p -> crop pixel: matrix applied to (p + offset); warpAffine takes it as dst -> src.
    to_crop = matrix.astype(np.float64).copy()
    to_crop[:, 2] += to_crop[:, :2] @ np.array([x0, y0], dtype=np.float64)
    dsize = (int(x1 - x0), int(y1 - y0))
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    alpha = cv2.warpAffine(mask, to_crop, dsize, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if not np.any(alpha > 0):
        return False
    warped = cv2.warpAffine(face, to_crop, dsize, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    region = frame[y0:y1, x0:x1]
    warped = BLEND_MODES[blend](warped, frame, alpha, x0, y0)
    a = alpha[..., None]
    mixed = region.astype(np.float32) * (1.0 - a) + warped * np.float32(255.0) * a
    np.copyto(region, np.clip(np.rint(mixed), 0, 255).astype(np.uint8), where=a > 0)
    return True


def _as_warped(warped: np.ndarray, frame: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """``alpha``: the warped face as it is, alpha-blended with the feathered mask."""
    return warped


def _seamless(warped: np.ndarray, frame: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """``seamless``: the region after ``cv2.seamlessClone`` of ``warped`` into ``frame`` inside
    alpha > 0.5 (float 0..1): Poisson blending first, so the face's edges take the frame's gradient."""
    hard = (alpha > 0.5).astype(np.uint8) * 255
    hard[0, :] = hard[-1, :] = 0  # seamlessClone needs a border of frame pixels around the mask
    hard[:, 0] = hard[:, -1] = 0
    ys, xs = np.nonzero(hard)
    if len(xs) < 16:
        return warped
    src = np.clip(np.rint(warped * 255.0), 0, 255).astype(np.uint8)
    bx0, bx1, by0, by1 = xs.min(), xs.max(), ys.min(), ys.max()
    centre = (int(x0 + (bx0 + bx1 + 1) // 2), int(y0 + (by0 + by1 + 1) // 2))
    try:
        cloned = cv2.seamlessClone(src, np.ascontiguousarray(frame), hard, centre, cv2.NORMAL_CLONE)
    except cv2.error:  # a mask against the frame's edge: keep the plain blend
        return warped
    rh, rw = warped.shape[:2]
    return cloned[y0:y0 + rh, x0:x0 + rw].astype(np.float32) / 255.0


def resize_to(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an H×W(×C) float32 image to size×size (area when shrinking, cubic when growing)."""
    if image.shape[0] == size:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_CUBIC
    out = cv2.resize(image, (size, size), interpolation=interp)
    return np.clip(out, 0.0, 1.0)


# name -> fn(face, target, mask): the face's colours matched to the original face's (crop, float 0..1).
COLOR_MODES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "avg": _lab_mean_shift,
    "hist": _histogram_match,
    "none": lambda face, target, mask: face,
}
# name -> fn(warped face, frame, alpha, x0, y0): the face as it goes into the alpha blend.
BLEND_MODES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], np.ndarray]] = {
    "alpha": _as_warped,
    "seamless": _seamless,
}
