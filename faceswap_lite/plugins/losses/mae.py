"""MAE: mean absolute error, the per-pixel L1 distance.

Map output N×C×H×W; its mean equals ``torch.nn.L1Loss()(pred, target)``.

Example:
    >>> import torch
    >>> from faceswap_lite.plugins.losses.mae import MAE
    >>> x = torch.rand(2, 3, 8, 8)
    >>> MAE()(x, x).abs().max().item()
    0.0
"""

from __future__ import annotations

import torch
from torch import nn

from faceswap_lite.losses import MAP, as_float, no_autocast
from faceswap_lite.registry import register_loss


@register_loss("mae")
class MAE(nn.Module):
    """Mean absolute error |x − y| per pixel (L1)."""

    output = MAP

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with no_autocast(pred.device):
            pred, target = as_float(pred, target)
            return (pred - target).abs()
