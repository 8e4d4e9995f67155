"""Validation: the model on each side's held-out faces, measured on the face (:mod:`.metrics`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..losses import LossMix
from ..models import face_and_mask, learns_mask
from .metrics import masked_psnr, masked_ssim

CHUNK = 32  # held-out faces per forward


@torch.no_grad()
def evaluate(model: nn.Module, data: Mapping[str, Any], device: torch.device,
             mix: LossMix | None = None, prefix: str = "val") -> dict[str, float]:
    """Validation per side on the held-out faces, measured on the face: ``val/<side>/psnr`` and
    ``ssim`` inside the face region (:mod:`faceswap_lite.train.metrics`), and ``val/<side>/loss``,
    the configured loss mix with the training masks (compare it with ``loss/total`` for over-fitting).
    A model that learns a mask adds ``val/<side>/mask_iou``: the mean per-face IoU of its mask
    (thresholded at 0.5) with the landmark face region (thresholded at 0.5)."""
    out: dict[str, float] = {}
    was = model.training
    model.eval()
    try:
        for s, d in data.items():
            val = d.val_batch()
            if val is None:
                continue
            n = val["target"].shape[0]
            for k, v in _side_sums(model, s, val, device, mix).items():
                if k != "loss" or mix is not None:
                    out[f"{prefix}/{s}/{k}"] = v / n
    finally:
        model.train(was)
    return out


def _side_sums(model: nn.Module, side: str, val: Mapping[str, torch.Tensor], device: torch.device,
               mix: LossMix | None) -> dict[str, float]:
    """Each metric summed over the side's held-out faces, in chunks of :data:`CHUNK`."""
    sums = {"psnr": 0.0, "ssim": 0.0, "loss": 0.0}
    if learns_mask(model):
        sums["mask_iou"] = 0.0
    for start in range(0, val["target"].shape[0], CHUNK):
        part = {k: v[start:start + CHUNK].to(device, torch.float32) for k, v in val.items()}
        x = part["target"]
        y, m = face_and_mask(model, x, side)
        y = y.float()
        sums["psnr"] += masked_psnr(y, x, part["region"]).nansum().item()
        sums["ssim"] += masked_ssim(y, x, part["region"]).nansum().item()
        if m is not None:
            sums["mask_iou"] += mask_iou(m, part["region"]).sum().item()
        if mix is not None:
            masks = {} if m is None else {"pred_mask": m, "target_mask": part["face"]}
            res = mix(y, x, part["face"], part["eyes"], part["mouth"], **masks)
            sums["loss"] += res.total.item() * x.shape[0]
    return sums


def mask_iou(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-face IoU (N) of two N×1×H×W masks thresholded at ``threshold``; 1 where both are empty."""
    p, t = pred > threshold, target > threshold
    inter = (p & t).flatten(1).sum(1).float()
    union = (p | t).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))
