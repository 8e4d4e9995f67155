"""GMSD: gradient magnitude similarity deviation (Xue et al. 2014), safe to train with.

W. Xue, L. Zhang, X. Mou, A. C. Bovik, "Gradient Magnitude Similarity Deviation: A Highly Efficient
Perceptual Image Quality Index", IEEE TIP 23(2), 2014 (arXiv:1308.3052).

For images N×C×H×W (C = 3 RGB, or C = 1 used as is) in [0, L] (``L = data_range``):

1. luma ``Y = 0.299·R + 0.587·G + 0.114·B`` (N×1×H×W);
2. 2×2 mean, stride 2, after zero-padding an odd bottom/right edge (N×1×⌈H/2⌉×⌈W/2⌉);
3. Prewitt gradients ``g_x = Y⊛h_x``, ``g_y = Y⊛h_y`` with ``h_x = [[1, 0, −1]]×3 / 3``,
   ``h_y = h_xᵀ``, zero-padded 'same' convolution; ``m = √(g_x² + g_y²)``;
4. ``GMS = (2·m_pred·m_target + T) / (m_pred² + m_target² + T)``, ``T = t·L²`` (t = 170/255²);
5. ``GMSD = population standard deviation of GMS`` over each image: one value per item (N)
   (as piq; the authors' MATLAB ``std2`` divides by n − 1, a factor √(n/(n − 1)) apart).

The value equals ``piq.gmsd(pred, target, reduction="none", data_range=L)`` (piq 0.8) to rounding.
Unlike piq, the gradient is finite everywhere: piq differentiates ``√0`` (in flat regions, where
``m = 0``) and the standard deviation of a constant map (identical or constant images) and returns
NaN. Here both square roots are evaluated with a zero gradient at 0 (:func:`sqrt_zero_grad`), which
changes no value: identical inputs give exactly 0 with a finite (zero) gradient.

Example:
    >>> import torch
    >>> from faceswap_lite.plugins.losses.gmsd import GMSD
    >>> x = torch.rand(2, 3, 32, 32, requires_grad=True)
    >>> loss = GMSD()
    >>> loss(x, x.detach()).tolist()
    [0.0, 0.0]
    >>> loss(x, torch.rand(2, 3, 32, 32)).sum().backward()
    >>> bool(torch.isfinite(x.grad).all())
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceswap_lite.losses import ITEM, as_float, no_autocast
from faceswap_lite.registry import register_loss

# ITU-R BT.601 luma weights (the Y row of the YIQ transform; piq/functional/colour_conversion.py).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# The authors' GMSD.m: T = 170 for 8-bit images (0–255); piq rescales it to [0, 1] as 170 / 255².
DEFAULT_T = 170 / 255**2


def sqrt_zero_grad(s: torch.Tensor) -> torch.Tensor:
    """``√s`` for ``s ≥ 0`` with gradient ``1/(2√s)`` where ``s > 0`` and 0 (not ∞) where ``s = 0``.

    The value is exactly ``torch.sqrt(s)``. The inner ``where`` keeps ``√`` away from 0, so the
    backward pass never forms ``∞·0``; the outer one routes no gradient to the masked entries.
    GMSD takes two roots of sums of squares, ``m = √(g_x² + g_y²)`` and ``std = √(mean (GMS − μ)²)``;
    their derivatives with respect to the squared quantities, ``g/m`` and ``(GMS_i − μ)/(n·std)``,
    are bounded (by 1 and 1/√n) wherever the root is positive, and at 0, where the magnitude is
    not differentiable, 0 is a valid subgradient (piq gets ``∞·0 = NaN`` there).
    """
    positive = s > 0
    root = torch.sqrt(torch.where(positive, s, torch.ones_like(s)))
    return torch.where(positive, root, torch.zeros_like(s))


def _luma(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB → N×1×H×W luma; N×1×H×W is returned as is."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _prewitt_kernels(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """2×1×3×3: Prewitt h_x = [[1, 0, −1]]×3 / 3 and h_y = h_xᵀ (Xue et al. 2014, Eq. 1)."""
    hx = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=dtype, device=device) / 3
    return torch.stack([hx, hx.t()]).unsqueeze(1)


def gmsd(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, t: float = DEFAULT_T) -> torch.Tensor:
    """GMSD per item (N values) of images N×C×H×W (C = 1 or 3) in [0, ``data_range``].

    Computed in the inputs' float dtype (float64 stays float64; anything else is float32) with
    autocast off. See the module docstring for the definition.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.dim() != 4 or pred.shape[1] not in (1, 3):
        raise ValueError(f"GMSD takes N×3×H×W RGB or N×1×H×W grey images, got shape {tuple(pred.shape)}")
    with no_autocast(pred.device):
        pred, target = as_float(pred, target)
        n = pred.shape[0]
        # Both images through every step in one batch: 2N×1×h×w.
        y = _luma(torch.cat([pred, target]))
        h, w = y.shape[-2:]
        y = F.avg_pool2d(F.pad(y, (0, w % 2, 0, h % 2)), kernel_size=2, stride=2)
        g = F.conv2d(y, _prewitt_kernels(y.dtype, y.device), padding=1)  # 2N×2×h'×w'
        m = sqrt_zero_grad(g.square().sum(dim=1))  # 2N×h'×w'
        mp, mt = m[:n], m[n:]
        c = t * data_range**2
        gms = (2 * mp * mt + c) / (mp**2 + mt**2 + c)
        gms = gms.flatten(1)
        var = (gms - gms.mean(dim=1, keepdim=True)).square().mean(dim=1)  # centred: no E[x²] − μ²
        return sqrt_zero_grad(var)


@register_loss("gmsd")
class GMSD(nn.Module):
    """Gradient magnitude similarity deviation (Xue et al. 2014), one value per item.

    Args:
        data_range: L, the images' value range ([0, L]); 1.0 for faceswap_lite images.
        t: the stability constant T for images in [0, 1] (170/255², the paper's T = 170 for 8-bit
            images); scaled by ``data_range²``.

    Shapes: pred, target N×C×H×W with C = 3 (RGB) or 1 → N. Equal to ``piq.gmsd`` (reduction
    "none") in value, with a finite gradient on identical, constant and flat inputs.
    """

    output = ITEM

    def __init__(self, data_range: float = 1.0, t: float = DEFAULT_T) -> None:
        super().__init__()
        if not data_range > 0:
            raise ValueError(f"data_range must be > 0, got {data_range}")
        if not t > 0:
            raise ValueError(f"t must be > 0 (it keeps GMS finite where both gradients vanish), got {t}")
        self.data_range = float(data_range)
        self.t = float(t)

    def extra_repr(self) -> str:
        return f"data_range={self.data_range:g}, t={self.t:.6g}"

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return gmsd(pred, target, self.data_range, self.t)
