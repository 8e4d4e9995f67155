"""Masked image metrics: PSNR and SSIM measured only where the face mask says the face is.

The losses train only inside the face mask, so a metric over the whole crop moves with the
background the model was never asked to learn. These metrics take the same mask.

* :func:`masked_psnr`: ``10·log10(1 / MSE)`` with the MSE a mask-weighted mean over pixels and
  channels.
* :func:`masked_ssim`: SSIM (Wang et al. 2004: 11×11 Gaussian window, σ = 1.5, K1 = 0.01,
  K2 = 0.03, as published) over ``valid`` windows only (no padding), averaged over the windows
  that lie wholly inside the mask: the mask is eroded to the window (a min-pool over the 11×11
  support), so no window that reaches into the background counts.

All take ``pred`` and ``target`` N×3×H×W in [0, 1] and ``mask`` N×1×H×W in [0, 1] (soft masks
weight pixels and windows) and return per-item values, a float32 tensor of N. Computed in float32
whatever the autocast state. An item with an empty (eroded) mask gives NaN.

>>> import torch
>>> x = torch.rand(2, 3, 32, 32)
>>> m = torch.ones(2, 1, 32, 32)
>>> masked_ssim(x, x, m).tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses.filters import gaussian_kernel1d, separable_filter

WINDOW = 11  # Wang et al. 2004, section III.C
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def _check(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must be equal N×C×H×W")
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != pred.shape[0] or mask.shape[-2:] != pred.shape[-2:]:
        raise ValueError(f"mask {tuple(mask.shape)} must be N×1×H×W for images {tuple(pred.shape)}")


def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-item PSNR in dB inside ``mask`` (MSE clamped at 1e-10, so identical faces give 100 dB)."""
    _check(pred, target, mask)
    with torch.autocast(pred.device.type, enabled=False):
        m = mask.float()
        se = (pred.float() - target.float()).pow(2) * m
        den = m.flatten(1).sum(1) * pred.shape[1]
        mse = se.flatten(1).sum(1) / den
        return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def ssim_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The SSIM map over ``valid`` windows, N×C×(H-10)×(W-10), float32."""
    if min(pred.shape[-2:]) < WINDOW:
        raise ValueError(f"SSIM needs faces of at least {WINDOW}×{WINDOW} pixels, got {tuple(pred.shape[-2:])}")
    x, y = pred.float(), target.float()
    g = gaussian_kernel1d(WINDOW, SIGMA, device=x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:  # the losses' separable Gaussian, ``valid`` windows
        return separable_filter(t, g)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = K1**2, K2**2
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def eroded_mask(mask: torch.Tensor) -> torch.Tensor:
    """The mask eroded to SSIM's windows: each window's minimum, N×1×(H-10)×(W-10)."""
    return -F.max_pool2d(-mask.float(), WINDOW, stride=1)


def masked_ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-item mean SSIM over the valid windows that lie inside ``mask`` (weighted by its minimum there)."""
    _check(pred, target, mask)
    with torch.autocast(pred.device.type, enabled=False):
        s = ssim_map(pred, target).mean(1, keepdim=True)
        m = eroded_mask(mask)
        return (s * m).flatten(1).sum(1) / m.flatten(1).sum(1)
