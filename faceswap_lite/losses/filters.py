"""The 1-D Gaussian window the SSIM map (:mod:`.ssim_map`) and the LPL loss build their filters
from, and a plain separable filter with it (the reference LPL's blur is tested against).

A K×K Gaussian window is the outer product of a 1-D kernel, so filtering costs 2·K taps per pixel
instead of K² (Wang et al.'s window is separable; the peers run the full depthwise K×K conv).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_kernel1d(size: int, sigma: float, dtype: torch.dtype = torch.float32,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd ``size`` and std ``sigma``, built in ``dtype`` (sums to 1)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be a positive odd number, got {size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def separable_filter(x: torch.Tensor, kernel: torch.Tensor, padding: str = "valid") -> torch.Tensor:
    """Filter each channel of ``x`` (N×C×H×W) with ``kernel`` along H, then along W.

    padding: ``valid`` (output shrinks by K−1), or an ``F.pad`` mode (``reflect``, ``replicate``,
    ``constant``) giving a same-size output.
    """
    c = x.shape[1]
    k = kernel.shape[0]
    if padding != "valid":
        p = k // 2
        x = F.pad(x, (p, p, p, p), mode=padding)
    kh = kernel.to(dtype=x.dtype, device=x.device).view(1, 1, k, 1).expand(c, 1, k, 1)
    kw = kernel.to(dtype=x.dtype, device=x.device).view(1, 1, 1, k).expand(c, 1, 1, k)
    x = F.conv2d(x, kh, groups=c)
    return F.conv2d(x, kw, groups=c)
