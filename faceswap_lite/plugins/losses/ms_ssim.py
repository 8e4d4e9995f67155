"""MS-SSIM loss: 1 − multi-scale structural similarity (Wang, Simoncelli, Bovik 2003).

Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for image quality
assessment", Proc. 37th Asilomar Conference on Signals, Systems and Computers, 2003,
doi:10.1109/ACSSC.2003.1292216.

For each channel, with the SSIM window and constants (see :mod:`ssim`) and ``valid`` statistics at
every scale j = 1..M (M = ``scales``; the image is halved between scales by a 2×2 mean, after
replicating the last row / column when a side is odd, as MATLAB ``msssim.m`` and TensorFlow
``ssim_multiscale`` do):

    MS-SSIM = Π_{j<M} relu(cs_j)^β_j · relu(ssim_M)^β_M

where cs_j and ssim_M are the means of the cs map (2σxy + C2)/(σx² + σy² + C2) at scale j and of the
SSIM map at the last scale, and β = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333). The value of an item
is the mean over its channels (as piq and pytorch-msssim compute it). ReLU before the powers: a
negative cs (anti-correlated content) would give NaN; the gradient of relu(v)^β stays finite at
v = 0 (it is taken at max(v, eps) for 0 < v < eps, and is 0 for v ≤ 0).

Shapes: ``MSSSIM()(pred, target)`` takes N×C×H×W images in [0, data_range] and returns N values of
1 − MS-SSIM (a per-item loss: LossMix multiplies the inputs by the face mask first).

Image size. M scales of a K-px window need a short side of at least (K − 1)·2^(M−1) + 1 px:
161 px for the defaults (K = 11, M = 5), 81 px for ``scales=4``, 41 px for ``scales=3``; with
``window_size=7``: 97, 49 and 25 px. Faces are often 64–128 px: for 128-px faces set ``scales = 4``;
for 64-px faces ``scales = 3`` (or ``window_size = 7, scales = 4``). With fewer than 5 scales the
first M published weights are used, divided by their sum (as piq does for custom weights); with 5
they are used as published (they sum to 1.0001), so the canonical value matches the peers. When an
image is too small, ``small = "error"`` (the default) raises a one-line error naming the size, the
minimum and the settings to change; ``small = "fewer_scales"`` uses as many scales as fit (weights
renormalised the same way) and logs a warning once per image size. Nothing changes silently.

Example:
    >>> import torch
    >>> from faceswap_lite.plugins.losses.ms_ssim import MSSSIM, ms_ssim_per_item
    >>> x = torch.rand(2, 3, 176, 176)
    >>> MSSSIM()(x, x).tolist()
    [0.0, 0.0]
    >>> MSSSIM(scales=3)(x[..., :64, :64], x[..., :64, :64] * 0.9).shape
    torch.Size([2])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from faceswap_lite.losses import ITEM, as_float, no_autocast
from faceswap_lite.registry import check_choices, register_loss

from .ssim import K1, K2, SIGMA, WINDOW_SIZE, check_ssim_settings, ssim_map

log = logging.getLogger(__name__)

# Wang, Simoncelli & Bovik 2003, section 3.2: the exponents β_j = γ_j (and α_M) fitted to subjective
# scores, finest scale first.
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SmallPolicy = Literal["error", "fewer_scales"]  # what to do with images too small for the scales


def min_side(window_size: int = WINDOW_SIZE, scales: int = len(WEIGHTS)) -> int:
    """The shortest image side MS-SSIM can take: (window_size − 1)·2^(scales − 1) + 1."""
    return (window_size - 1) * 2 ** (scales - 1) + 1


def scales_that_fit(side: int, window_size: int = WINDOW_SIZE) -> int:
    """How many scales an image with short side ``side`` allows (0 when the window does not fit)."""
    m = 0
    while m < len(WEIGHTS) and side >= min_side(window_size, m + 1):
        m += 1
    return m


def scale_weights(scales: int) -> tuple[float, ...]:
    """β for ``scales`` scales: the published five, or the first ``scales`` of them renormalised."""
    if scales == len(WEIGHTS):
        return WEIGHTS
    total = sum(WEIGHTS[:scales])
    return tuple(b / total for b in WEIGHTS[:scales])


def _too_small_message(h: int, w: int, window_size: int, scales: int) -> str:
    side = min(h, w)
    fit = scales_that_fit(side, window_size)
    window_fit = (side - 1) // 2 ** (scales - 1) + 1
    window_fit -= 1 - window_fit % 2  # odd
    hints = []
    if fit:
        hints.append(f"scales={fit}")
    if window_fit >= 3:
        hints.append(f"window_size={window_fit}")
    hints.append("small='fewer_scales'")
    return (f"MS-SSIM with window_size={window_size} and scales={scales} needs images of at least "
            f"{min_side(window_size, scales)} px on the short side, got {h}×{w}: set "
            f"{' or '.join(hints)}")


class _ReluPow(torch.autograd.Function):
    """relu(v)^β with a finite gradient: β·max(v, eps)^(β−1) where v > 0, and 0 where v ≤ 0."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(v, beta)
        return v.clamp(min=0).pow(beta)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN205
        v, beta = ctx.saved_tensors
        safe = v.clamp(min=torch.finfo(v.dtype).eps)
        return grad * beta * safe.pow(beta - 1) * (v > 0), None


def _halve(t: torch.Tensor) -> torch.Tensor:
    """2×2 mean, stride 2, after replicating the last row / column of an odd side."""
    pad_h, pad_w = t.shape[-2] % 2, t.shape[-1] % 2
    if pad_h or pad_w:
        t = F.pad(t, (0, pad_w, 0, pad_h), mode="replicate")
    return F.avg_pool2d(t, kernel_size=2)


def ms_ssim_per_item(x: torch.Tensor, y: torch.Tensor, window_size: int = WINDOW_SIZE, sigma: float = SIGMA,
                     k1: float = K1, k2: float = K2, data_range: float = 1.0,
                     scales: int = len(WEIGHTS)) -> torch.Tensor:
    """Canonical MS-SSIM of each item (not the loss): N values.

    x, y: N×C×H×W in [0, data_range] with a short side of at least ``min_side(window_size, scales)``.
    With the defaults it equals ``piq.multi_scale_ssim(x, y, data_range=1., reduction='none')`` and
    ``pytorch_msssim.ms_ssim(x, y, data_range=1, size_average=False)`` (the latter only where no side
    is odd at scales 1–4: it zero-pads odd sides).
    """
    check_ssim_settings(window_size, sigma, k1, k2, data_range)
    _check_scales(scales)
    h, w = x.shape[-2:]
    if min(h, w) < min_side(window_size, scales):
        raise ValueError(_too_small_message(h, w, window_size, scales))
    with no_autocast(x.device):
        x, y = as_float(x, y)
        beta = x.new_tensor(scale_weights(scales))
        factors = []
        for j in range(scales):
            if j:
                x, y = _halve(x), _halve(y)
            last = j == scales - 1
            m = ssim_map(x, y, window_size, sigma, k1, k2, data_range, "valid", cs_only=not last)
            factors.append(m.mean(dim=(2, 3)))  # N×C: cs_j, or ssim at the last scale
        stacked = torch.stack(factors)  # scales×N×C
        return _ReluPow.apply(stacked, beta.view(-1, 1, 1)).prod(dim=0).mean(dim=1)


def _check_scales(scales: int) -> None:
    if isinstance(scales, bool) or not isinstance(scales, int) or not 1 <= scales <= len(WEIGHTS):
        raise ValueError(f"scales must be an integer from 1 to {len(WEIGHTS)} (5 in Wang et al.), got {scales!r}")


@register_loss("ms_ssim")
class MSSSIM(nn.Module):
    """1 − MS-SSIM per item (Wang, Simoncelli, Bovik 2003); 0 for identical images.

    Settings: ``window_size`` (odd, 11), ``sigma`` (1.5), ``k1`` (0.01), ``k2`` (0.03), ``data_range``
    (1.0), ``scales`` (1–5, 5), ``small`` (``"error"`` or ``"fewer_scales"``): what to do when an
    image is smaller than (window_size − 1)·2^(scales − 1) + 1 px (161 for the defaults). For 64–128 px
    faces set ``scales`` to 3 or 4 (see the module docstring).
    """

    output = ITEM

    def __init__(self, window_size: int = WINDOW_SIZE, sigma: float = SIGMA, k1: float = K1, k2: float = K2,
                 data_range: float = 1.0, scales: int = len(WEIGHTS), small: SmallPolicy = "error") -> None:
        super().__init__()
        check_ssim_settings(window_size, sigma, k1, k2, data_range)
        _check_scales(scales)
        check_choices(MSSSIM, small=small)
        self.window_size = window_size
        self.sigma = float(sigma)
        self.k1, self.k2 = float(k1), float(k2)
        self.data_range = float(data_range)
        self.scales = scales
        self.small = small
        self._warned: set[tuple[int, int]] = set()

    @classmethod
    def fits(cls, settings: Mapping[str, Any], resolution: int) -> dict[str, Any] | None:
        """``settings`` with as many of their scales as ``resolution`` px allow (the loss hook of
        :mod:`faceswap_lite.losses.base`); None when not even one scale of the window fits."""
        fit = scales_that_fit(resolution, settings.get("window_size", WINDOW_SIZE))
        scales = min(settings.get("scales", len(WEIGHTS)), fit)
        return {**settings, "scales": scales} if scales else None

    def extra_repr(self) -> str:
        return (f"window_size={self.window_size}, sigma={self.sigma}, k1={self.k1}, k2={self.k2}, "
                f"data_range={self.data_range}, scales={self.scales}, small={self.small!r}")

    def scales_for(self, h: int, w: int) -> int:
        """The number of scales used for h×w images (raises ValueError when they are too small)."""
        if min(h, w) >= min_side(self.window_size, self.scales):
            return self.scales
        fit = scales_that_fit(min(h, w), self.window_size)
        if self.small == "error" or fit == 0:
            raise ValueError(_too_small_message(h, w, self.window_size, self.scales))
        if (h, w) not in self._warned:
            self._warned.add((h, w))
            log.warning("MS-SSIM: %d×%d images are smaller than the %d px that %d scales of a %d-px window need; "
                        "using %d scales with weights %s (small='fewer_scales'). Set scales=%d to silence this.",
                        h, w, min_side(self.window_size, self.scales), self.scales, self.window_size, fit,
                        ", ".join(f"{b:.4f}" for b in scale_weights(fit)), fit)
        return fit

    def per_item(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Canonical MS-SSIM (not the loss) of each item with this loss's settings: N values."""
        scales = self.scales_for(*pred.shape[-2:])
        return ms_ssim_per_item(pred, target, self.window_size, self.sigma, self.k1, self.k2, self.data_range,
                                scales)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """N×C×H×W images → N values of 1 − MS-SSIM."""
        return 1.0 - self.per_item(pred, target)
