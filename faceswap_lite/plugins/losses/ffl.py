"""FFL: focal frequency loss (Jiang et al. 2021), as the official ``focal-frequency-loss`` package.

L. Jiang, B. Dai, W. Wu, C. C. Loy, "Focal Frequency Loss for Image Reconstruction and Synthesis",
ICCV 2021 (arXiv:2012.12821); official code: the ``focal-frequency-loss`` package (0.3.0).

For images N×C×H×W, with ``p = patch_factor``:

1. split each image into p×p patches of (H/p)×(W/p) (H and W must be multiples of p);
2. ``F = fft2(patch, norm="ortho")`` per channel, ``Δ = F_pred − F_target``;
3. ``d = |Δ|²`` (squared frequency distance) and the spectrum weight ``w = |Δ|^alpha``, then
   ``w = log(1 + w)`` with ``log_matrix``; ``w /= max(w)`` over each (item, patch, channel), or over
   the whole batch with ``batch_matrix``; NaN (0/0 where the spectra coincide) → 0; clamp to [0, 1];
   **w is detached** (a constant for autograd, as in the paper, Eq. 5 and Sec. 3.3);
4. the loss is ``mean(w·d)``: here one value per item, the mean over its patches, channels and
   frequencies, so the batch mean of the N values is the official package's value (with
   ``loss_weight = 1``).

With ``ave_spectrum`` the spectra are averaged over the batch first (official behaviour), which
leaves one value for the whole batch: it is returned broadcast to N equal values, so the batch mean
(what LossMix uses) is the official value and the gradient is the official one.

FFL lives in frequency space: never multiply its output by a spatial mask; give it masked inputs
(LossMix does, for per-item losses).

Computation: the DFT is linear, so ``Δ = fft2(pred − target)`` needs one transform instead of two,
and since the input is real, ``|Δ|`` is Hermitian-symmetric: a single ``rfft2`` (half the spectrum)
with each column counted by its multiplicity (1 for the self-conjugate columns 0 and W/2, else 2)
gives the exact full-spectrum mean, and the same maximum. The value equals the official package's up
to rounding (its ``F_pred − F_target`` cancels digits that ``fft2(pred − target)`` keeps). The FFT
runs in float32 (float64 for float64 inputs) with autocast off. Unlike the official forward, nothing
is read back to the host (it checks the weights with ``.item()`` and masks NaN by boolean indexing).

Example:
    >>> import torch
    >>> from faceswap_lite.plugins.losses.ffl import FFL
    >>> x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    >>> FFL()(x, x).tolist()
    [0.0, 0.0]
    >>> FFL(alpha=2.0, patch_factor=2)(x, y).shape
    torch.Size([2])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from faceswap_lite.losses import ITEM, as_float, no_autocast
from faceswap_lite.registry import register_loss


def _patches(t: torch.Tensor, patch_factor: int) -> torch.Tensor:
    """N×C×H×W → N×P×C×(H/p)×(W/p), P = p², patches in row-major order (as the official package)."""
    n, c, h, w = t.shape
    p = patch_factor
    if h % p or w % p:
        raise ValueError(f"FFL patch_factor {p} must divide the image height and width, got {h}×{w}")
    t = t.reshape(n, c, p, h // p, p, w // p).permute(0, 2, 4, 1, 3, 5)
    return t.reshape(n, p * p, c, h // p, w // p)


def _column_multiplicity(width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """How often each ``rfft`` column appears in the full spectrum of a real signal of ``width``.

    Column 0 (and column width/2 when width is even) is its own mirror image; every other column k
    stands for itself and its conjugate width − k.
    """
    mult = torch.full((width // 2 + 1,), 2.0, dtype=dtype, device=device)
    mult[0] = 1.0
    if width % 2 == 0:
        mult[-1] = 1.0
    return mult


def spectrum_weight(d: torch.Tensor, alpha: float = 1.0, log_matrix: bool = False,
                    batch_matrix: bool = False) -> torch.Tensor:
    """The focal weight ``w`` for squared distances ``d = |Δ|²`` of shape N×P×C×h×w' (detached).

    ``w = |Δ|^alpha`` (optionally ``log(1 + w)``), divided by its maximum over each (item, patch,
    channel), or over everything with ``batch_matrix``; NaN → 0; clamped to [0, 1].
    """
    with torch.no_grad():
        w = d.detach().sqrt()
        if alpha != 1.0:
            w = w.pow(alpha)
        if log_matrix:
            w = torch.log1p(w)
        peak = w.amax() if batch_matrix else w.amax(dim=(-2, -1), keepdim=True)
        w = torch.nan_to_num(w / peak, nan=0.0)  # 0/0 where the spectra coincide
        return w.clamp(0.0, 1.0)


def ffl(pred: torch.Tensor, target: torch.Tensor, alpha: float = 1.0, patch_factor: int = 1,
        ave_spectrum: bool = False, log_matrix: bool = False, batch_matrix: bool = False) -> torch.Tensor:
    """Focal frequency loss per item (N values) of images N×C×H×W; see the module docstring."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.dim() != 4:
        raise ValueError(f"FFL takes N×C×H×W images, got shape {tuple(pred.shape)}")
    with no_autocast(pred.device):
        pred, target = as_float(pred, target)
        n = pred.shape[0]
        diff = _patches(pred - target, patch_factor)  # N×P×C×h×w
        if ave_spectrum:
            diff = diff.mean(dim=0, keepdim=True)  # the spectrum is linear: mean of spectra
        ph, pw = diff.shape[-2:]
        spec = torch.fft.rfft2(diff, norm="ortho")  # N×P×C×h×(w//2+1)
        d = spec.real.square() + spec.imag.square()
        w = spectrum_weight(d, alpha, log_matrix, batch_matrix)
        w = w * _column_multiplicity(pw, w.dtype, w.device)
        count = diff.shape[1] * diff.shape[2] * ph * pw  # patches × channels × full spectrum
        per_item = (w * d).flatten(1).sum(dim=1) / count
        return per_item.expand(n) if ave_spectrum else per_item


@register_loss("ffl")
class FFL(nn.Module):
    """Focal frequency loss (Jiang et al. 2021), one value per item.

    Args:
        alpha: exponent of the spectrum weight ``|Δ|^alpha`` (≥ 0; 0 gives plain frequency MSE).
        patch_factor: split each image into patch_factor² patches (must divide H and W).
        ave_spectrum: average the spectra over the batch first; the batch value is returned N times.
        log_matrix: weight ``log(1 + |Δ|^alpha)`` instead of ``|Δ|^alpha``.
        batch_matrix: normalise the weight by its maximum over the whole batch, not per
            (item, patch, channel).

    Shapes: pred, target N×C×H×W → N. The mean of the N values equals
    ``focal_frequency_loss.FocalFrequencyLoss(**settings)(pred, target)``.
    """

    output = ITEM

    def __init__(self, alpha: float = 1.0, patch_factor: int = 1, ave_spectrum: bool = False,
                 log_matrix: bool = False, batch_matrix: bool = False) -> None:
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        if isinstance(patch_factor, bool) or not isinstance(patch_factor, int) or patch_factor < 1:
            raise ValueError(f"patch_factor must be an integer >= 1, got {patch_factor!r}")
        for key, value in (("ave_spectrum", ave_spectrum), ("log_matrix", log_matrix),
                           ("batch_matrix", batch_matrix)):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, got {value!r}")
        self.alpha = float(alpha)
        self.patch_factor = patch_factor
        self.ave_spectrum = ave_spectrum
        self.log_matrix = log_matrix
        self.batch_matrix = batch_matrix

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha:g}, patch_factor={self.patch_factor}, ave_spectrum={self.ave_spectrum}, "
                f"log_matrix={self.log_matrix}, batch_matrix={self.batch_matrix}")

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ffl(pred, target, self.alpha, self.patch_factor, self.ave_spectrum, self.log_matrix,
                   self.batch_matrix)
