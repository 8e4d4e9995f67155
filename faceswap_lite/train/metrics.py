"""Masked image metrics: PSNR and SSIM measured only where the face mask says the face is.

The losses train only inside the face mask, so a metric over the whole crop moves with the
background the model was never asked to learn. These metrics take the same mask.

* :func:`masked_psnr`: ``10·log10(1 / MSE)`` with the MSE a mask-weighted mean over pixels and
  channels.
* :func:`masked_ssim`: SSIM (Wang et al. 2004: 11×11 Gaussian window, σ = 1.5, K1 = 0.01,
  K2 = 0.03, as published; the map of :mod:`faceswap_lite.losses.ssim_map`, the one the ``ssim``
  loss trains with) over ``valid`` windows only (no padding), averaged over the windows that lie
  wholly inside the mask: the mask is eroded to the window (a min-pool over the 11×11 support), so
  no window that reaches into the background counts.

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

from ..losses.ssim_map import WINDOW_SIZE, ssim_map


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


def eroded_mask(mask: torch.Tensor) -> torch.Tensor:
    """The mask eroded to SSIM's windows: each window's minimum, N×1×(H-10)×(W-10)."""
    return -F.max_pool2d(-mask.float(), WINDOW_SIZE, stride=1)


def masked_ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-item mean SSIM over the valid windows that lie inside ``mask`` (weighted by its minimum there)."""
    _check(pred, target, mask)
    # float32 inputs: the metric is float32 for float64 images too (ssim_map keeps float64 as it is).
    s = ssim_map(pred.float(), target.float(), padding="valid").mean(1, keepdim=True)
    m = eroded_mask(mask)
    return (s * m).flatten(1).sum(1) / m.flatten(1).sum(1)
