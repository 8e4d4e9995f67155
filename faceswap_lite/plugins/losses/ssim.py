"""SSIM loss: 1 − structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004).

Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
visibility to structural similarity", IEEE Trans. Image Processing 13(4):600–612, 2004,
doi:10.1109/TIP.2003.819861.

With a Gaussian window w (``window_size`` taps, std ``sigma``, normalised to sum 1 in the compute
dtype), C1 = (k1·L)², C2 = (k2·L)², L = ``data_range``, per channel:

    μx = w⊛x,  σx² = w⊛x² − μx²,  σxy = w⊛xy − μxμy
    SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))

Shapes: ``SSIM()(pred, target)`` takes N×C×H×W images in [0, L] and returns the per-pixel loss
map 1 − SSIM, N×C×H×W with ``padding="reflect"`` (same size, reflect-padded borders: kornia
``padding="same"``, torchmetrics) or N×C×(H−K+1)×(W−K+1) with ``padding="valid"`` (MATLAB ``ssim``,
piq with ``downsample=False``, pytorch-msssim with ``data_range=1``). The canonical value of an
item is the mean of its map: :func:`ssim_per_item` returns it (as SSIM, not as a loss).

The map is :func:`faceswap_lite.losses.ssim_map.ssim_map` (how it is computed: see there), the
one SSIM implementation this loss, ``ms_ssim`` and the masked SSIM metric share.

Example:
    >>> import torch
    >>> from faceswap_lite.plugins.losses.ssim import SSIM, ssim_per_item
    >>> x = torch.rand(2, 3, 32, 32)
    >>> SSIM()(x, x).abs().max().item()
    0.0
    >>> SSIM(padding="valid")(x, x * 0.5).shape
    torch.Size([2, 3, 22, 22])
    >>> ssim_per_item(x, x).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from faceswap_lite.losses import MAP
from faceswap_lite.losses.ssim_map import K1, K2, SIGMA, WINDOW_SIZE, check_ssim_settings, ssim_map
from faceswap_lite.registry import check_choices, register_loss


def ssim_per_item(x: torch.Tensor, y: torch.Tensor, window_size: int = WINDOW_SIZE, sigma: float = SIGMA,
                  k1: float = K1, k2: float = K2, data_range: float = 1.0, padding: str = "valid") -> torch.Tensor:
    """Canonical SSIM of each item (not the loss): the mean of its map over channels and pixels, N values.

    ``padding="valid"`` (the default here) is Wang et al.'s MATLAB value, equal to
    ``piq.ssim(x, y, data_range=1., downsample=False, reduction='none')`` and
    ``pytorch_msssim.ssim(x, y, data_range=1, size_average=False)``; ``padding="reflect"`` equals
    ``kornia.metrics.ssim(x, y, 11, eps=0.0).mean((1, 2, 3))`` and torchmetrics'
    ``structural_similarity_index_measure(..., data_range=1.0, reduction='none')``.
    """
    return ssim_map(x, y, window_size, sigma, k1, k2, data_range, padding).mean(dim=(1, 2, 3))


@register_loss("ssim")
class SSIM(nn.Module):
    """1 − SSIM per pixel and channel (Wang et al. 2004); a map loss, 0 for identical images.

    Settings: ``window_size`` (odd, 11), ``sigma`` (1.5), ``k1`` (0.01), ``k2`` (0.03),
    ``data_range`` (1.0 for images in [0, 1]), ``padding``: ``"reflect"`` (same-size map, the
    natural choice under a face mask) or ``"valid"`` (the map shrinks by window_size − 1).
    """

    output = MAP

    def __init__(self, window_size: int = WINDOW_SIZE, sigma: float = SIGMA, k1: float = K1, k2: float = K2,
                 data_range: float = 1.0, padding: Literal["valid", "reflect"] = "reflect") -> None:
        super().__init__()
        check_ssim_settings(window_size, sigma, k1, k2, data_range)
        check_choices(SSIM, padding=padding)
        self.window_size = window_size
        self.sigma = float(sigma)
        self.k1, self.k2 = float(k1), float(k2)
        self.data_range = float(data_range)
        self.padding = padding

    def extra_repr(self) -> str:
        return (f"window_size={self.window_size}, sigma={self.sigma}, k1={self.k1}, k2={self.k2}, "
                f"data_range={self.data_range}, padding={self.padding!r}")

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """N×C×H×W images → N×C×h×w map of 1 − SSIM (h = H for ``reflect``, H − window_size + 1 for ``valid``)."""
        return ssim_map(pred, target, self.window_size, self.sigma, self.k1, self.k2, self.data_range,
                        self.padding, as_loss=True)

    def per_item(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Canonical SSIM (not the loss) of each item with this loss's settings: N values."""
        return ssim_per_item(pred, target, self.window_size, self.sigma, self.k1, self.k2, self.data_range,
                             self.padding)
