"""Training augmentation: a random affine (rotation, zoom, shift, flip), colour, and the random warp.

One training sample is made from one decoded face (uint8 RGB H×W×3) and a per-sample
``numpy.random.Generator`` (see :func:`sample_rng`), so it depends only on (seed, epoch, index):
the same sample comes out whatever the number of DataLoader workers.

1. **Geometry**: one 2×3 affine (rotation about the centre, zoom, shift, horizontal flip) applied with
   ``cv2.warpAffine`` (border replicated). Landmark masks are not warped as images: their polygons are
   mapped by the same matrix (:func:`faceswap_lite.data.masks.landmark_masks`). albumentations'
   ``Affine`` on the image and three masks took ~15× longer than one ``warpAffine`` on a 64 px face
   here (1.9 ms against 0.1 ms), so it is not used.
2. **Colour** (albumentations, driven by the sample's Generator through ``Compose.set_random_state``):
   brightness/contrast (probability ``AugmentConfig.lightness``), hue/saturation (``color``) and
   CLAHE (``clahe``). The result is the **target**.
3. **Random warp** (probability ``warp``): displacements drawn at a ``warp_grid``×``warp_grid`` grid of
   control points spanning the image (normal, σ = ``warp_strength``·size pixels) are carried to every
   pixel by a cubic B-spline, a smooth flow field (rms displacement ≈ 0.5σ per axis; no folds at
   sane strengths), and applied to the target with ``cv2.remap``. The result is the **model input**,
   so the network has to learn the face rather than copy pixels (faceswap's ``random_warp`` idea, in
   lib/training/augmentation.py there).
"""

from __future__ import annotations

import functools
import random

import albumentations as A
import cv2
import numpy as np

from ..config import AugmentConfig

# Colour limits (AugmentConfig holds the probabilities). faceswap's defaults shift lightness by up to
# 30 % and the a/b colour channels by up to 8 (of 255); these are of the same order.
BRIGHTNESS_LIMIT = 0.2  # ± brightness, share of the range
CONTRAST_LIMIT = 0.2  # ± contrast factor
HUE_LIMIT = 8  # ± hue shift, degrees (OpenCV's hue range is 0–180 for uint8)
SATURATION_LIMIT = 20  # ± saturation shift, of 255
CLAHE_CLIP = 2.0
CLAHE_TILES = (4, 4)


def sample_rng(seed: int, epoch: int, index: int, stream: int = 0) -> np.random.Generator:
    """The Generator of one sample: a pure function of (seed, stream, epoch, index).

    ``stream`` separates independent users of the same seed (e.g. the two sides' face sets).
    """
    mask = (1 << 64) - 1
    return np.random.default_rng([seed & mask, stream & mask, epoch & mask, index & mask])


def draw_affine(rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """One sample's affine parameters: float64 (angle °, zoom, shift x, shift y as shares of the size, flip 0/1).

    Rotation uniform in ±``rotation`` degrees, zoom in 1 ± ``scale``, shifts in ±``shift``, flip with
    probability ``flip``. Always draws 5 values, so the stream does not depend on the settings.
    Both augmentation paths (workers and device) draw their geometry here.
    """
    u = rng.random(5)
    return np.array([(2.0 * u[0] - 1.0) * cfg.rotation, 1.0 + (2.0 * u[1] - 1.0) * cfg.scale,
                     (2.0 * u[2] - 1.0) * cfg.shift, (2.0 * u[3] - 1.0) * cfg.shift, float(u[4] < cfg.flip)])


def affine_matrix(params: np.ndarray, size: int) -> np.ndarray:
    """The 2×3 affine (output pixels from crop pixels) of :func:`draw_affine`'s ``params`` at ``size`` px.

    Rotation and zoom about the centre, then the shift, then the horizontal flip.
    """
    angle, zoom, sx, sy, flip = (float(v) for v in params)
    c = (size - 1) / 2.0
    m = cv2.getRotationMatrix2D((c, c), angle, zoom)
    m[:, 2] += (sx * size, sy * size)
    if flip:  # x -> (size - 1) - x after the rest
        m[0] = -m[0]
        m[0, 2] += size - 1
    return m


def random_affine(rng: np.random.Generator, size: int, cfg: AugmentConfig) -> np.ndarray:
    """A random 2×3 affine (output pixels from crop pixels) for a size×size face.

    :func:`draw_affine` then :func:`affine_matrix`: rotation uniform in ±``rotation`` degrees and zoom
    in 1 ± ``scale`` about the centre, shift uniform in ±``shift``·size pixels on each axis, then a
    horizontal flip with probability ``flip``.
    """
    return affine_matrix(draw_affine(rng, cfg), size)


def colour_transform(cfg: AugmentConfig) -> A.Compose | None:
    """The albumentations colour pipeline for ``cfg``, or None when every probability is 0."""
    transforms = []
    if cfg.lightness > 0:
        transforms.append(A.RandomBrightnessContrast(brightness_limit=BRIGHTNESS_LIMIT,
                                                     contrast_limit=CONTRAST_LIMIT, p=cfg.lightness))
    if cfg.color > 0:
        transforms.append(A.HueSaturationValue(hue_shift_limit=HUE_LIMIT, sat_shift_limit=SATURATION_LIMIT,
                                               val_shift_limit=0, p=cfg.color))
    if cfg.clahe > 0:
        transforms.append(A.CLAHE(clip_limit=CLAHE_CLIP, tile_grid_size=CLAHE_TILES, p=cfg.clahe))
    if not transforms:
        return None
    return A.Compose(transforms, p=1.0, strict=False)


@functools.lru_cache(maxsize=16)
def _bspline_weights(size: int, grid: int) -> np.ndarray:
    """size×grid float32 weights of a uniform cubic B-spline through ``grid`` controls spanning the image.

    Control j sits at pixel j·(size − 1)/(grid − 1); rows are normalised to sum to 1 (at the borders
    the spline would otherwise lose weight), which keeps the field smooth and bounded.
    """
    t = np.arange(size)[:, None] * ((grid - 1) / max(size - 1, 1)) - np.arange(grid)[None, :]
    a = np.abs(t)
    w = np.where(a < 1, 2 / 3 - a**2 + a**3 / 2, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def draw_warp(rng: np.random.Generator, size: int, cfg: AugmentConfig) -> np.ndarray | None:
    """One sample's warp: float32 2×grid×grid control displacements in pixels, or None (no warp).

    Applied with probability ``warp``; each control point moves by a normal draw with
    σ = ``warp_strength``·size pixels in x and y. Both augmentation paths draw their warp here.
    """
    if rng.random() < cfg.warp and cfg.warp_strength > 0:
        return rng.normal(0.0, cfg.warp_strength * size, size=(2, cfg.warp_grid, cfg.warp_grid)).astype(np.float32)
    return None


def displacement_maps(disp: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``cv2.remap`` maps (map_x, map_y), float32 size×size, of control displacements ``disp``."""
    w = _bspline_weights(size, disp.shape[-1])
    base = np.arange(size, dtype=np.float32)
    return base[None, :] + w @ disp[0] @ w.T, base[:, None] + w @ disp[1] @ w.T


def warp_maps(rng: np.random.Generator, size: int, grid: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``cv2.remap`` maps (map_x, map_y), float32 size×size, of a random smooth warp.

    Control points sit on a ``grid``×``grid`` lattice spanning the image (corners included); each is
    displaced by a normal draw with σ = ``strength``·size pixels in x and y; a cubic B-spline carries
    the displacement to every pixel. Its gradient is at most the largest difference between
    neighbouring controls over their spacing, (size − 1)/(grid − 1) pixels, so the warp folds only
    for strengths far above the defaults (the bound TorchIO states for its elastic deformation).
    """
    disp = rng.normal(0.0, strength * size, size=(2, grid, grid)).astype(np.float32)
    return displacement_maps(disp, size)


def random_warp(image: np.ndarray, rng: np.random.Generator, grid: int, strength: float) -> np.ndarray:
    """``image`` (H×W×C, H == W) resampled through :func:`warp_maps` (bilinear, border replicated)."""
    map_x, map_y = warp_maps(rng, image.shape[0], grid, strength)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class Augmenter:
    """Makes (target, input, matrix) from one face; see the module docstring for the steps.

    ``augmenter(image, rng)`` with ``image`` uint8 RGB size×size×3 returns the target and the
    model input (uint8 size×size×3 each) and the 2×3 affine applied (crop → target pixels), which
    the caller passes to :func:`~faceswap_lite.data.masks.landmark_masks`.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self.colour = colour_transform(cfg)
        self.geometric = cfg.rotation > 0 or cfg.scale > 0 or cfg.shift > 0 or cfg.flip > 0
        self._py_random = random.Random(0)  # albumentations' Python RNG, reseeded per sample

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        size = image.shape[0]
        cfg = self.cfg
        # Draw order: affine (fixed count), warp, then colour last (albumentations draws a varying
        # number of values), so each stage's draws do not depend on the settings of the later ones.
        matrix = random_affine(rng, size, cfg)
        disp = draw_warp(rng, size, cfg)
        maps = None if disp is None else displacement_maps(disp, size)
        if self.geometric:
            target = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        else:
            target, matrix = image, None
        if self.colour is not None:
            self._py_random.seed(int(rng.integers(1 << 62)))
            self.colour.set_random_state(rng, self._py_random)
            target = self.colour(image=target)["image"]
        if maps is None:
            return target, target, matrix
        model_input = cv2.remap(target, maps[0], maps[1], interpolation=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        return target, model_input, matrix
