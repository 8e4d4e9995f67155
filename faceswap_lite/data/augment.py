"""Training augmentation: a random affine (rotation, zoom, shift, flip), colour, and the random warp.

One training sample is made from one decoded face (uint8 RGB H×W×3) and a per-sample
``numpy.random.Generator`` (see :func:`sample_rng`), so it depends only on (seed, epoch, index):
the same sample comes out whatever the number of DataLoader workers.

1. **Geometry**: one 2×3 affine (rotation about the centre, zoom, shift, horizontal flip) applied with
   ``cv2.warpAffine`` (border replicated). Landmark masks are not warped as images: their polygons are
   mapped by the same matrix (:func:`faceswap_lite.data.masks.landmark_masks`). albumentations'
   ``Affine`` does the same job about 10× slower on 64 px faces, so it is not used here.
2. **Colour** (albumentations, driven by the sample's Generator through ``Compose.set_random_state``):
   brightness/contrast (probability ``AugmentConfig.lightness``), hue/saturation (``color``) and
   CLAHE (``clahe``). The result is the **target**.
3. **Random warp** (probability ``warp``): displacements drawn at a ``warp_grid``×``warp_grid`` grid of
   control points (normal, σ = ``warp_strength``·size pixels) are interpolated bicubically to a dense
   flow field and applied to the target with ``cv2.remap``. The result is the **model input**, so the
   network has to learn the face rather than copy pixels (faceswap's ``random_warp`` idea, in
   lib/training/augmentation.py there).
"""

from __future__ import annotations

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


def random_affine(rng: np.random.Generator, size: int, cfg: AugmentConfig) -> np.ndarray:
    """A random 2×3 affine (output pixels from crop pixels) for a size×size face.

    Rotation uniform in ±``rotation`` degrees and zoom in 1 ± ``scale`` about the centre, shift uniform
    in ±``shift``·size pixels on each axis, then a horizontal flip with probability ``flip``.
    Always draws the same number of values, so the stream does not depend on the settings.
    """
    u = rng.random(5)
    angle = (2.0 * u[0] - 1.0) * cfg.rotation
    zoom = 1.0 + (2.0 * u[1] - 1.0) * cfg.scale
    tx, ty = (2.0 * u[2:4] - 1.0) * cfg.shift * size
    flip = u[4] < cfg.flip
    c = (size - 1) / 2.0
    m = cv2.getRotationMatrix2D((c, c), angle, zoom)
    m[:, 2] += (tx, ty)
    if flip:  # x -> (size - 1) - x after the rest
        m[0] = -m[0]
        m[0, 2] += size - 1
    return m


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


def warp_maps(rng: np.random.Generator, size: int, grid: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``cv2.remap`` maps (map_x, map_y), float32 size×size, of a random smooth warp.

    Control points sit on a ``grid``×``grid`` lattice spanning the image; each is displaced by a
    normal draw with σ = ``strength``·size pixels in x and y; the displacement is interpolated to every
    pixel with bicubic resizing (smooth: its gradient is about σ·(grid − 1)/size per pixel).
    """
    disp = rng.normal(0.0, strength * size, size=(2, grid, grid)).astype(np.float32)
    dx = cv2.resize(disp[0], (size, size), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(disp[1], (size, size), interpolation=cv2.INTER_CUBIC)
    base = np.arange(size, dtype=np.float32)
    return base[None, :] + dx, base[:, None] + dy


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

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        size = image.shape[0]
        cfg = self.cfg
        matrix = random_affine(rng, size, cfg)
        if self.geometric:
            target = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        else:
            target, matrix = image, None
        # Child generators keep each stage's draws independent of the others' settings.
        colour_rng, warp_rng = rng.spawn(2)
        if self.colour is not None:
            self.colour.set_random_state(colour_rng, random.Random(int(colour_rng.integers(1 << 62))))
            target = self.colour(image=target)["image"]
        if cfg.warp > 0 and cfg.warp_strength > 0 and warp_rng.random() < cfg.warp:
            model_input = random_warp(target, warp_rng, cfg.warp_grid, cfg.warp_strength)
        else:
            model_input = target
        return target, model_input, matrix

