"""Augmentation on the training device: the workers' affine, flip, colour and random warp, batched.

With ``data.augment_on = "device"`` the DataLoader's workers only hand over what is cached: each
sample (:class:`RawFaceDataset`) is the face as uint8 R×R×3, four uint8 R×R planes (the face, eye and
mouth regions filled from the landmark hulls, unfeathered, and the valid area: the planes
:func:`~faceswap_lite.data.masks.landmark_masks` starts from) and its augmentation parameters, a
float32 vector drawn by :func:`draw_params` from the sample's own Generator,
:func:`~faceswap_lite.data.augment.sample_rng` (seed, side stream, epoch, index). The trainer
moves the batch to the device and calls :func:`augment_batch`, which returns the same dict as the
workers path (``input``, ``target`` N×3×R×R, ``face``, ``eyes``, ``mouth`` N×1×R×R, float32 in
[0, 1]) from a few batched kernels:

1. **Masks**: the region planes are feathered by the workers' Gaussian (σ = ``mask.blur``·R/2,
   same kernel, zero border), the face is cut to the valid area (hard edge) and eyes and mouth to
   the face, as :func:`~faceswap_lite.data.masks.landmark_masks` does, but before the affine rather
   than after it (the feathering then scales with the zoom, ±``scale``). The Gaussian was 70 % of a
   raw sample's time in a worker at 256 px.
2. **Geometry**: one ``affine_grid`` + ``grid_sample`` (bilinear, border replicated, like
   ``cv2.warpAffine`` with ``BORDER_REPLICATE``) for the image; the masks go through the same grid
   with zero padding, so pixels from outside the crop get no mask (the workers path cuts them out
   too, with a hard edge where this one has a one-pixel bilinear edge).
3. **Colour**: brightness/contrast ``α·x + β``, then a hue/saturation shift in HSV (OpenCV's uint8
   units: hue 0–180, saturation 0–255; grey pixels stay grey), as albumentations'
   ``RandomBrightnessContrast`` and ``HueSaturationValue`` do on the workers; CLAHE through kornia's
   ``equalize_clahe`` on the L channel of CIE Lab (albumentations equalises the same channel), one
   call per sample that draws it, since the clip limit is drawn per sample (off by default).
4. **Random warp**: the same cubic B-spline of the same control displacements as
   :func:`~faceswap_lite.data.augment.displacement_maps`, as one batched matrix product, then
   ``grid_sample`` of the target (the model input).

How close to the workers path: the affine and warp parameters of a sample are *the same numbers*
(both paths draw them with :func:`~faceswap_lite.data.augment.draw_affine` and
:func:`~faceswap_lite.data.augment.draw_warp` from the same Generator, in the same order), so the
geometry differs only by interpolation rounding. The colour parameters come from the same
distributions (same limits, same probabilities) but not the same draws: albumentations draws its own
from a Python ``random.Random``. Nothing is bit-equal to the workers' uint8 pipeline (this one
works in float and rounds nowhere); tests/data/test_device_augment.py measures both.
Runs stay reproducible and resumable: a sample's parameters are a pure function of its key.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..config import AugmentConfig, DataConfig, MaskConfig
from ..settings import check_value
from .augment import (
    BRIGHTNESS_LIMIT,
    CLAHE_CLIP,
    CLAHE_TILES,
    CONTRAST_LIMIT,
    HUE_LIMIT,
    SATURATION_LIMIT,
    _bspline_weights,
    draw_affine,
    draw_warp,
    sample_rng,
)
from .dataset import FaceDataset
from .masks import feather_kernel, valid_area

AUGMENT_ON = DataConfig.__dataclass_fields__["augment_on"].metadata["choices"]  # declared once, by the config
RAW_KEYS = ("image", "masks", "params")

# Layout of the parameter vector (see draw_params): affine, colour, warp flag, then the displacements.
AFFINE = slice(0, 5)  # angle °, zoom, shift x, shift y (shares of the size), flip 0/1
COLOUR = slice(5, 13)  # lightness on, α, β, colour on, hue shift, saturation shift, CLAHE on, clip limit
WARP_ON = 13
DISP = 14


def resolve_augment_on(value: str, device: torch.device | str) -> str:
    """``"workers"`` or ``"device"`` for ``data.augment_on``: ``auto`` is the device on CUDA, else the workers."""
    check_value("data.augment_on", value, str, {"choices": AUGMENT_ON}, ValueError)
    if value != "auto":
        return value
    return "device" if torch.device(device).type == "cuda" else "workers"


def param_count(cfg: AugmentConfig) -> int:
    """Length of one sample's parameter vector for ``cfg``."""
    return DISP + 2 * cfg.warp_grid * cfg.warp_grid


def draw_colour(rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """One sample's colour parameters (8 values, the :data:`COLOUR` layout), from the workers' distributions.

    Each stage applies with its probability (``lightness``, ``color``, ``clahe``); contrast factor
    α = 1 + U(±CONTRAST_LIMIT), brightness β = U(±BRIGHTNESS_LIMIT) of the range, hue shift
    U(±HUE_LIMIT) in OpenCV units (2° each), saturation shift U(±SATURATION_LIMIT) of 255, CLAHE clip
    limit U(1, CLAHE_CLIP): albumentations' ``RandomBrightnessContrast``, ``HueSaturationValue`` and
    ``CLAHE`` as :func:`~faceswap_lite.data.augment.colour_transform` sets them up.
    """
    u = rng.random(8)
    return np.array([u[0] < cfg.lightness, 1.0 + (2.0 * u[1] - 1.0) * CONTRAST_LIMIT,
                     (2.0 * u[2] - 1.0) * BRIGHTNESS_LIMIT, u[3] < cfg.color, (2.0 * u[4] - 1.0) * HUE_LIMIT,
                     (2.0 * u[5] - 1.0) * SATURATION_LIMIT, u[6] < cfg.clahe, 1.0 + u[7] * (CLAHE_CLIP - 1.0)],
                    dtype=np.float64)


def draw_params(rng: np.random.Generator, size: int, cfg: AugmentConfig) -> np.ndarray:
    """One sample's parameters, float32 of length :func:`param_count`.

    Drawn in the workers' order (affine, warp, then colour), so the affine and the warp are the
    numbers :class:`~faceswap_lite.data.augment.Augmenter` draws for the same Generator.
    """
    out = np.zeros(param_count(cfg), dtype=np.float32)
    out[AFFINE] = draw_affine(rng, cfg)
    disp = draw_warp(rng, size, cfg)
    if disp is not None:
        out[WARP_ON] = 1.0
        out[DISP:] = disp.ravel()
    out[COLOUR] = draw_colour(rng, cfg)
    return out


class RawFaceDataset(FaceDataset):
    """The workers' side of ``augment_on = "device"``: cached faces, plain masks and parameters.

    ``dataset[(epoch, i)]`` returns ``image`` (uint8 R×R×3, the cached face), ``masks`` (uint8
    4×R×R, 0 or 255: the face, eye and mouth regions, unfeathered, and the valid area) and
    ``params`` (float32, :func:`draw_params` from the Generator the workers path would use for that
    sample). Build it with :meth:`of`.
    """

    @classmethod
    def of(cls, dataset: FaceDataset) -> RawFaceDataset:
        """The raw twin of a training :class:`~faceswap_lite.data.dataset.FaceDataset` (same faces, seed, side)."""
        if dataset.augment is None:
            raise ValueError("device augmentation needs a training dataset (one with augment settings)")
        return cls(dataset.store, dataset.indices, augment=dataset.augment, mask=dataset.mask,
                   seed=dataset.seed, stream=dataset.stream)

    def sample(self, index: int, epoch: int = 0) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self.indices):
            raise IndexError(f"index {index} out of range for {len(self.indices)} faces")
        i, image = self._image(index)
        size = self.store.resolution
        planes = np.empty((4, size, size), np.uint8)
        planes[:3] = self.store.hulls[i].draw(size)
        valid = valid_area(size, self.store.valid_polygons[i])
        planes[3] = 255 if valid is None else valid * np.float32(255.0)
        params = draw_params(sample_rng(self.seed, epoch, index, self.stream), size, self.augment)
        return {"image": torch.from_numpy(np.array(image, copy=True)), "masks": torch.from_numpy(planes),
                "params": torch.from_numpy(params)}


# ------------------------------------------------------------------------------------------------
# The batched augmentation


def affine_theta(params: torch.Tensor, size: int) -> torch.Tensor:
    """N×2×3 ``affine_grid`` matrices (``align_corners=False``) of the :data:`AFFINE` parameters.

    The forward map is :func:`~faceswap_lite.data.augment.affine_matrix`'s, dst = A·src + t in pixels
    (pixel centres at integers); ``grid_sample`` needs the inverse in normalised coordinates,
    p = s·n + c with s = size/2, c = (size − 1)/2.
    """
    angle, zoom, sx, sy, flip = params.unbind(1)
    rad = torch.deg2rad(angle)
    a, b = zoom * torch.cos(rad), zoom * torch.sin(rad)
    c = (size - 1) / 2.0
    # cv2.getRotationMatrix2D: [[a, b, (1 - a)c - b·c], [-b, a, b·c + (1 - a)c]], then the shift.
    tx = (1 - a) * c - b * c + sx * size
    ty = b * c + (1 - a) * c + sy * size
    m = torch.stack([torch.stack([a, b, tx], 1), torch.stack([-b, a, ty], 1)], 1)  # N×2×3
    sign = 1.0 - 2.0 * flip  # flip: row 0 -> -row 0, plus (size - 1)
    m = torch.stack([m[:, 0] * sign[:, None], m[:, 1]], 1)
    m[:, 0, 2] += flip * (size - 1)
    lin, t = m[:, :, :2], m[:, :, 2]
    det = lin[:, 0, 0] * lin[:, 1, 1] - lin[:, 0, 1] * lin[:, 1, 0]  # closed form: no solver launch
    inv = torch.stack([torch.stack([lin[:, 1, 1], -lin[:, 0, 1]], 1),
                       torch.stack([-lin[:, 1, 0], lin[:, 0, 0]], 1)], 1) / det[:, None, None]
    centre = torch.full_like(t, c)
    offset = (inv @ (centre - t).unsqueeze(-1)).squeeze(-1) - centre
    return torch.cat([inv, (offset / (size / 2.0)).unsqueeze(-1)], 2)


@functools.lru_cache(maxsize=16)
def _weights(size: int, grid: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(_bspline_weights(size, grid)).to(device)


def warp_grid(disp: torch.Tensor, size: int) -> torch.Tensor:
    """N×size×size×2 ``grid_sample`` grid of control displacements ``disp`` (N×2×g×g pixels).

    The B-spline of :func:`~faceswap_lite.data.augment.displacement_maps` as one batched product:
    the dense displacement is W·D·Wᵀ with W the size×g spline weights.
    """
    w = _weights(size, disp.shape[-1], disp.device)
    dense = torch.einsum("yi,nkij,xj->nyxk", w, disp, w)  # N×size×size×2: (dx, dy) at pixel (y, x)
    base = torch.arange(size, dtype=disp.dtype, device=disp.device)
    x = base[None, None, :] + dense[..., 0]
    y = base[None, :, None] + dense[..., 1]
    return torch.stack([x, y], -1) * (2.0 / size) + (1.0 / size - 1.0)


def _rgb_to_hsv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(hue in degrees [0, 360), saturation [0, 1], value [0, 1]) of N×3×H×W RGB, OpenCV's definition."""
    r, g, b = rgb.unbind(1)
    v, arg = rgb.max(1)
    delta = v - rgb.min(1).values
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(arg == 0, torch.remainder((g - b) / safe, 6.0),
                    torch.where(arg == 1, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    h = torch.where(delta > 0, h, torch.zeros_like(h))
    s = torch.where(v > 0, delta / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return h, s, v


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB from hue (degrees), saturation and value (the closed form f(n) = v − v·s·max(0, min(k, 4 − k, 1)))."""
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + h / 60.0, 6.0)
        out.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(out, 1)


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def apply_colour(image: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Brightness/contrast then hue/saturation on N×3×H×W in [0, 1], by the N×8 :data:`COLOUR` parameters.

    Samples whose stage is off pass through that stage unchanged. CLAHE is :func:`apply_clahe`.
    """
    light_on, alpha, beta, colour_on, hue, sat = (colour[:, k] for k in range(6))
    lit = torch.clamp(image * _per_sample(alpha) + _per_sample(beta), 0.0, 1.0)
    image = torch.where(_per_sample(light_on) > 0, lit, image)
    h, s, v = _rgb_to_hsv(image)
    h = torch.remainder(h + hue.view(-1, 1, 1) * 2.0, 360.0)  # OpenCV hue units are 2°
    s = torch.where(s > 0, torch.clamp(s + sat.view(-1, 1, 1) / 255.0, 0.0, 1.0), s)  # grey stays grey
    return torch.where(_per_sample(colour_on) > 0, _hsv_to_rgb(h, s, v), image)


def apply_clahe(image: torch.Tensor, clahe_on: np.ndarray, clip: np.ndarray) -> torch.Tensor:
    """CLAHE on the Lab L channel of the samples with ``clahe_on`` (host arrays, so no device sync)."""
    chosen = np.flatnonzero(clahe_on > 0)
    if len(chosen) == 0:
        return image
    from kornia.color import lab_to_rgb, rgb_to_lab
    from kornia.enhance import equalize_clahe

    out = image.clone()
    for k in chosen.tolist():
        lab = rgb_to_lab(image[k:k + 1])
        lum = equalize_clahe(lab[:, :1] / 100.0, clip_limit=float(clip[k]), grid_size=CLAHE_TILES)
        out[k:k + 1] = lab_to_rgb(torch.cat([lum * 100.0, lab[:, 1:]], 1)).clamp(0.0, 1.0)
    return out


@functools.lru_cache(maxsize=16)
def _gaussian_band(size: int, sigma: float, k: int, device: torch.device) -> torch.Tensor:
    """size×size matrix B with X·B = X blurred along rows by ``cv2.GaussianBlur``'s kernel for σ
    and side ``k`` (:func:`~faceswap_lite.data.masks.feather_kernel`) with a zero border. A banded
    matmul: on a CPU it was 6× faster than ``conv2d`` with a 1×k kernel on single-channel planes, and
    it is a GEMM on a GPU."""
    x = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    g = g / g.sum()
    i = torch.arange(size)
    offset = i[:, None] - i[None, :] + k // 2  # input i, output j
    band = torch.where((offset >= 0) & (offset < k), g[offset.clamp(0, k - 1)], torch.zeros((), dtype=g.dtype))
    return band.float().to(device)


def finish_masks(planes: torch.Tensor, mask: MaskConfig) -> torch.Tensor:
    """N×3×R×R face, eyes, mouth in [0, 1] from :class:`RawFaceDataset`'s float N×4×R×R planes.

    :func:`~faceswap_lite.data.masks.landmark_masks`' steps on the device: feather the regions
    (separable Gaussian, zero border), cut the face to the valid area (or take the valid area itself
    when ``mask.face`` is off), then keep eyes and mouth inside the face.
    """
    regions, valid = planes[:, :3], planes[:, 3:4]
    kernel = feather_kernel(mask.blur, planes.shape[-1])
    if kernel is not None:
        band = _gaussian_band(planes.shape[-1], *kernel, planes.device)
        regions = band.T @ regions @ band  # columns, then rows (the kernel is symmetric)
    face = regions[:, :1] * valid if mask.face else valid
    return torch.cat([face, torch.minimum(regions[:, 1:], face)], 1)


def _images(batch_images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 N×H×W×3 or N×3×H×W on any device -> float32 N×3×H×W in [0, 1] on ``device``."""
    x = batch_images.to(device, non_blocking=True)
    if x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    return x.float().div_(255.0).contiguous()


def augment_batch(batch: Mapping[str, torch.Tensor], cfg: AugmentConfig, mask: MaskConfig,
                  device: torch.device | str, warp: bool = True) -> dict[str, torch.Tensor]:
    """Augment a :class:`RawFaceDataset` batch on ``device``: the workers path's batch dict.

    ``batch``: ``image`` uint8 N×R×R×3 (or N×3×R×R), ``masks`` uint8 N×4×R×R, ``params`` float32 N×P
    (leave it on the host: the CLAHE choice is read from it without a device sync). Returns
    ``input``, ``target`` float32 N×3×R×R and ``face``, ``eyes``, ``mouth`` float32 N×1×R×R, in [0, 1].
    ``warp`` false (the trainer's no-warp finish, ``augment.warp_until``) skips the random warp:
    ``input`` is ``target``; the drawn displacements in ``params`` are left unused.
    """
    device = torch.device(device)
    image = _images(batch["image"], device)
    n, _, size, _ = image.shape
    host = batch["params"]
    params = host.to(device, non_blocking=True)
    theta = affine_theta(params[:, AFFINE], size)
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
    target = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    planes = batch["masks"].to(device, non_blocking=True).float().div_(255.0)
    masks = F.grid_sample(finish_masks(planes, mask), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if cfg.lightness > 0 or cfg.color > 0:
        target = apply_colour(target, params[:, COLOUR])
    if cfg.clahe > 0:
        colour_host = host[:, COLOUR].cpu().numpy()
        target = apply_clahe(target, colour_host[:, 6], colour_host[:, 7])
    model_input = target
    if warp and cfg.warp > 0 and cfg.warp_strength > 0:
        disp = params[:, DISP:].view(n, 2, cfg.warp_grid, cfg.warp_grid)
        warped = F.grid_sample(target, warp_grid(disp, size), mode="bilinear", padding_mode="border",
                               align_corners=False)
        model_input = torch.where(_per_sample(params[:, WARP_ON]) > 0, warped, target)
    return {"input": model_input, "target": target, "face": masks[:, 0:1], "eyes": masks[:, 1:2],
            "mouth": masks[:, 2:3]}
