"""Charbonnier loss: a smooth L1, sqrt((x − y)² + ε²) − ε. A user-style custom loss plugin.

This file is what a user writes: drop it in a folder and pass ``--plugins-dir FOLDER`` (or list the
folder under ``[plugins] dirs`` in the config), or ship it in a package that declares the entry point
group ``faceswap_lite.plugins``. Then use it in the config:

    [[loss]]
    name = "charbonnier"
    weight = 1.0
    eps = 0.001
"""

from __future__ import annotations

import torch
from torch import nn

from faceswap_lite.losses import MAP, as_float, no_autocast
from faceswap_lite.registry import register_loss


@register_loss("charbonnier")
class Charbonnier(nn.Module):
    """Charbonnier (smooth L1): sqrt(d² + eps²) − eps per pixel; 0 for identical images."""

    output = MAP  # a per-pixel map, so LossMix can apply face/eye/mouth masks

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with no_autocast(pred.device):
            pred, target = as_float(pred, target)
            d = pred - target
            return torch.sqrt(d * d + self.eps**2) - self.eps
