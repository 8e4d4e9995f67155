"""LPL: Laplacian pyramid loss, as used for face autoencoders (faceswap's definition).

The Laplacian pyramid L1 loss of Bojanowski et al., "Optimizing the Latent Space of Generative
Networks" (GLO), ICML 2018 (arXiv:1707.05776), in the variant faceswap trains with (its
``LaplacianPyramidLoss``): levels weighted 4^(−j) and the band-pass levels taken against the
blurred image itself (not against an expanded coarser level). The GLO paper's own code differs
(unweighted levels, a different kernel); this is the definition faceswap users trained with.

For images N×C×H×W, with ``blur`` a ``kernel_size``×``kernel_size`` Gaussian (σ = ``sigma``),
replicate padding, per channel, and ``avgpool2`` a 2×2 mean with stride 2 that drops an odd last
row/column (``F.avg_pool2d``'s floor, as faceswap):

    G_0 = image;  for j = 0 … levels−1:  L_j = G_j − blur(G_j),  G_{j+1} = avgpool2(blur(G_j));
    L_levels = G_levels;
    LPL = Σ_{j=0..levels} 4^(−j) · mean |L_j(pred) − L_j(target)|     (mean over C×h_j×w_j, per item)

:func:`lpl` / :meth:`LPL.per_item` return this canonical value (N values). The loss's output (what
LossMix uses) is a map N×C×H×W: each level's ``|L_j(pred) − L_j(target)|`` upsampled bilinearly
(``align_corners=False``) to H×W, weighted 4^(−j) and summed. Bilinear upsampling by an integer
factor preserves the mean exactly, so **when H and W are multiples of 2^levels, the map's mean over
C×H×W equals the canonical value** (to rounding). For other sizes the coarse levels, which cover
the top-left ⌊H/2^j⌋·2^j rows and columns, are stretched to H×W and the mean is only close: the
relative difference is below 4e-6 on the 99- and 176-px test cases, and about 5e-5 when the error
sits in the last rows of a 99-px image.

Defaults: 5 levels, 5×5 kernel, σ = 1.0. faceswap's docstring says σ 2.0, but its code uses 1.0,
which is what users have trained with. Odd sides: ``avgpool2`` drops the last row/column (floor,
as ``F.avg_pool2d`` and faceswap). Images need a side of at least 2^levels (else ValueError).

Computation: the pyramid is linear, so it is built once, for ``pred − target``: half the work of
two pyramids, and identical inputs give exactly 0. The blur is one 5×5 depthwise convolution whose
taps sum to exactly 1 in the compute dtype (:func:`unit_sum_kernel2d`): a window that sums to 1 + δ
leaks δ·g into every level, which is what made a float32 blur-then-subtract lose digits (1.2e-6
relative on the test cases); with an exact sum, float32 stays within 1.4e-7 of the float64 value.
The N×C images are laid out as N·C channels of one channels-last image (H×W×N·C in memory), where
oneDNN's depthwise convolution, the padding, pooling and upsampling vectorise over the N·C
channels: the blur's forward + backward ran 5-13× faster (1 CPU thread, 64-256 px, batch 16)
than in the N×C×H×W layout with its 3 channels. The map is returned in that layout (an N×C×H×W
view with strides (C, 1, W·N·C, N·C)). Statistics run in float32 (float64 for float64 inputs)
with autocast off.

Example:
    >>> import torch
    >>> from faceswap_lite.plugins.losses.lpl import LPL
    >>> x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    >>> loss = LPL()
    >>> loss(x, y).shape
    torch.Size([2, 3, 64, 64])
    >>> torch.allclose(loss(x, y).mean(dim=(1, 2, 3)), loss.per_item(x, y))
    True
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from faceswap_lite.losses import MAP, as_float, no_autocast
from faceswap_lite.losses.filters import gaussian_kernel1d
from faceswap_lite.registry import register_loss

# faceswap lib/model/losses LaplacianPyramidLoss: max_levels 5, gaussian_size 5, gaussian_sigma 1.0
# (the code's default; its docstring says 2.0), level weights 2^(−2j).
DEFAULT_LEVELS = 5
DEFAULT_KERNEL_SIZE = 5
DEFAULT_SIGMA = 1.0


def unit_sum_kernel2d(kernel: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``kernel ⊗ kernel`` (1-D ``kernel`` summing to 1) rounded to ``dtype``, its taps then moved by
    a few units in the last place so that their exact sum is 1.

    Largest taps first, each absorbs what is left of ``1 − Σ taps`` in whole ulps of its own; the
    smallest ulp among the taps divides every tap and 1, so the last ones absorb the rest. Each tap
    stays within a few ulps of its rounded Gaussian value (2.7e-8 at most for the float32 default).
    """
    k = kernel.detach().to(device="cpu", dtype=torch.float64)
    values = k[:, None] * k[None, :]
    taps = [float(v) for v in values.to(dtype).to(torch.float64).flatten()]
    eps = torch.finfo(dtype).eps
    residual = 1 - sum(Fraction(t) for t in taps)  # exact: Fractions of the dtype values
    for i in sorted(range(len(taps)), key=lambda i: -abs(taps[i])):
        if residual == 0 or taps[i] == 0:
            break
        ulp = Fraction(math.ldexp(eps, math.frexp(taps[i])[1] - 1))  # spacing of dtype values at taps[i]
        step = round(residual / ulp) * ulp
        taps[i] = float(Fraction(taps[i]) + step)
        residual -= step
    return torch.tensor(taps, dtype=dtype).view(values.shape)


@functools.lru_cache(maxsize=64)
def _blur_weight(size: int, sigma: float, channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """channels×1×size×size depthwise weight of :func:`unit_sum_kernel2d` (built once per setting)."""
    kernel = unit_sum_kernel2d(gaussian_kernel1d(size, sigma, dtype=torch.float64), dtype)
    return kernel.to(device).expand(channels, 1, size, size).contiguous()


def _band_and_blur_with(g: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g − blur(g), blur(g))``: ``weight`` C×1×K×K depthwise, replicate padding, same size."""
    r = weight.shape[-1] // 2
    blurred = F.conv2d(F.pad(g, (r, r, r, r), mode="replicate"), weight, groups=g.shape[1]) if r else g
    return g - blurred, blurred


def band_and_blur(g: torch.Tensor, kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g − blur(g), blur(g))`` for N×C×H×W ``g``; ``blur`` = the 2-D window ``kernel ⊗ kernel``
    (:func:`unit_sum_kernel2d`; ``kernel`` odd, sum 1), replicate padding, same size: equal to
    ``separable_filter(g, kernel, padding="replicate")`` (faceswap_lite.losses.filters) to rounding.
    """
    c, k = g.shape[1], kernel.shape[0]
    weight = unit_sum_kernel2d(kernel, g.dtype).to(g.device).expand(c, 1, k, k)
    return _band_and_blur_with(g, weight)


def _level_errors(pred: torch.Tensor, target: torch.Tensor, levels: int, kernel_size: int,
                  sigma: float) -> list[torch.Tensor]:
    """``[L_j(pred) − L_j(target)  for j = 0..levels]``, level j of shape 1×N·C×⌊H/2^j⌋×⌊W/2^j⌋
    (channel n·C + c is image n, channel c), channels-last."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.dim() != 4:
        raise ValueError(f"LPL takes N×C×H×W images, got shape {tuple(pred.shape)}")
    n, c, h, w = pred.shape
    if min(h, w) < 2**levels:
        raise ValueError(f"LPL with {levels} levels needs images of at least {2**levels}×{2**levels} "
                         f"(each level halves the size), got {h}×{w}: lower `levels`")
    # L_j(pred) − L_j(target) = L_j(pred − target): the pyramid is linear.
    g = (pred - target).reshape(1, n * c, h, w).contiguous(memory_format=torch.channels_last)
    weight = _blur_weight(kernel_size, sigma, n * c, g.dtype, g.device)
    bands = []
    for _ in range(levels):
        band, blurred = _band_and_blur_with(g, weight)
        bands.append(band)
        g = F.avg_pool2d(blurred, kernel_size=2, stride=2)
    bands.append(g)
    return bands


def lpl(pred: torch.Tensor, target: torch.Tensor, levels: int = DEFAULT_LEVELS,
        kernel_size: int = DEFAULT_KERNEL_SIZE, sigma: float = DEFAULT_SIGMA) -> torch.Tensor:
    """The canonical LPL per item (N values): Σ_j 4^(−j) · mean |L_j(pred) − L_j(target)|."""
    with no_autocast(pred.device):
        pred, target = as_float(pred, target)
        n, c = pred.shape[:2]
        bands = _level_errors(pred, target, levels, kernel_size, sigma)
        sums = [b.abs().sum(dim=(2, 3)) * (4.0**-j / (c * b.shape[2] * b.shape[3])) for j, b in enumerate(bands)]
        return torch.stack(sums).sum(0).view(n, c).sum(1)


def lpl_map(pred: torch.Tensor, target: torch.Tensor, levels: int = DEFAULT_LEVELS,
            kernel_size: int = DEFAULT_KERNEL_SIZE, sigma: float = DEFAULT_SIGMA) -> torch.Tensor:
    """LPL map N×C×H×W: Σ_j 4^(−j) · bilinear_upsample(|L_j(pred) − L_j(target)|, H×W)."""
    with no_autocast(pred.device):
        pred, target = as_float(pred, target)
        n, c, h, w = pred.shape
        bands = _level_errors(pred, target, levels, kernel_size, sigma)
        out = bands[0].abs()
        for j, b in enumerate(bands[1:], start=1):
            # 4^(−j) is a power of 2: scaling the coarse level first is exact, and 4^j times cheaper.
            level = b.abs().mul_(4.0**-j)
            out.add_(F.interpolate(level, size=(h, w), mode="bilinear", align_corners=False))
        return out.view(n, c, h, w)


@register_loss("lpl")
class LPL(nn.Module):
    """Laplacian pyramid L1 loss, a per-pixel map N×C×H×W (see the module docstring).

    Args:
        levels: number of band-pass levels (the pyramid has levels + 1 terms); images need a side
            of at least 2**levels.
        sigma: standard deviation of the Gaussian blur, in pixels.
        kernel_size: odd side of the Gaussian window.

    Shapes: pred, target N×C×H×W → map N×C×H×W; :meth:`per_item` → N (the canonical value, equal
    to the map's mean over C×H×W when H and W are multiples of 2**levels).
    """

    output = MAP

    def __init__(self, levels: int = DEFAULT_LEVELS, sigma: float = DEFAULT_SIGMA,
                 kernel_size: int = DEFAULT_KERNEL_SIZE) -> None:
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 0:
            raise ValueError(f"levels must be an integer >= 0, got {levels!r}")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 \
                or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.levels = levels
        self.sigma = float(sigma)
        self.kernel_size = kernel_size

    def extra_repr(self) -> str:
        return f"levels={self.levels}, sigma={self.sigma:g}, kernel_size={self.kernel_size}"

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return lpl_map(pred, target, self.levels, self.kernel_size, self.sigma)

    def per_item(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The canonical LPL per item (N values), exactly the definition."""
        return lpl(pred, target, self.levels, self.kernel_size, self.sigma)
