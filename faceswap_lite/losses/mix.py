"""LossMix: the configured losses, their weights and the face/eye/mouth masks, in float32.

``total = Σ_i weight_i · loss_i`` where, for a map loss, ``loss_i`` is the masked mean
``Σ(map·m) / Σ(m)`` with ``m = face · (1 + eye_weight·eye + mouth_weight·mouth)`` (centre-cropped to
the map when the map is smaller, as ``valid`` SSIM is), and for a per-item loss it is the batch mean
of the loss on inputs multiplied by the face mask. Inputs of map losses are multiplied by the face
mask too, so pixels outside it neither change the loss nor receive gradient (a windowed loss such as
SSIM would otherwise reach across the mask border).

With ``learn_weight`` set (the model learns a mask), the mix adds one more component, ``mask``:
the mean squared error between the predicted mask and the landmark face mask of the target, over
every pixel (not masked, not emphasised), times ``learn_weight``. DeepFaceLab trains its mask with
``mean(10·(target − pred)²)`` beside an image term that carries the same factor 10; here the image
losses carry weight 1, so the mask's MSE does too (``[mask] learn_weight = 1``).

Everything stays on the device: components are 0-d tensors and no value is read back to the host,
so the training loop decides when to synchronise. Each loss is built by ``LOSSES.build``, which
checks its output shape on its first call: a loss breaking its contract stops the first step, before
any checkpoint is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import PluginError
from ..registry import LOSSES
from .base import ITEM, MAP, no_autocast, output_kind


@dataclass
class MixResult:
    """The mix's output: all 0-d tensors on the device, nothing synchronised."""

    total: torch.Tensor
    unweighted: dict[str, torch.Tensor]
    weighted: dict[str, torch.Tensor]

    @property
    def finite(self) -> torch.Tensor:
        """0-d bool tensor: every component is finite."""
        return torch.isfinite(torch.stack(list(self.unweighted.values()))).all()


def mask_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of a predicted mask against the landmark mask (N×1×H×W), in float32 (or float64)."""
    if pred.shape != target.shape:
        raise ValueError(f"predicted mask {tuple(pred.shape)} and target mask {tuple(target.shape)} differ")
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    return (pred.to(dtype) - target.to(dtype)).square().mean()


def centre_crop(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Centre-crop the last two dims of ``t`` to h×w (the border must be even on each side)."""
    dh, dw = t.shape[-2] - h, t.shape[-1] - w
    if dh == 0 and dw == 0:
        return t
    if dh < 0 or dw < 0 or dh % 2 or dw % 2:
        raise ValueError(f"cannot centre-crop {tuple(t.shape[-2:])} to {(h, w)}: the border must be even")
    return t[..., dh // 2 : t.shape[-2] - dh // 2, dw // 2 : t.shape[-1] - dw // 2]


class LossMix(nn.Module):
    """Weighted mix of registered losses.

    Args:
        specs: one mapping per loss, ``{"name": ..., "weight": ..., **settings}``.
        eye_weight, mouth_weight: extra emphasis inside the eye and mouth masks for map losses.
        learn_weight: weight of the ``mask`` component (None = the model learns no mask: no component).

    ``forward(pred, target, face=None, eyes=None, mouth=None, pred_mask=None, target_mask=None)``:
    images N×C×H×W in [0, 1]; masks N×1×H×W in [0, 1] (None = no mask / no emphasis); with
    ``learn_weight`` set, ``pred_mask`` (the model's) and ``target_mask`` (the landmark face mask)
    are required. Returns a :class:`MixResult`.
    """

    MASK = "mask"  # the label of the learned-mask component

    def __init__(self, specs: Sequence[Mapping[str, Any]], eye_weight: float = 0.0,
                 mouth_weight: float = 0.0, learn_weight: float | None = None) -> None:
        super().__init__()
        if not specs:
            raise PluginError("no loss configured: add at least one [[loss]] table with a name")
        self.names: list[str] = []
        self.weights: list[float] = []
        self.kinds: list[str] = []
        losses = []
        for i, spec in enumerate(specs):
            spec = dict(spec)
            if "name" not in spec:
                raise PluginError(f"loss #{i + 1} has no 'name' key: add name = \"mae\" (or another loss)")
            name = spec.pop("name")
            if learn_weight is not None and name == self.MASK:
                raise PluginError(f"loss #{i + 1}: the name {self.MASK!r} is the learned mask's own term; "
                                  "rename the loss plugin")
            weight = spec.pop("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise PluginError(f"loss {name!r} weight must be a number, got {weight!r}")
            loss = LOSSES.build(name, spec)
            label = name
            k = 2
            while label in self.names:
                label = f"{name}_{k}"
                k += 1
            self.names.append(label)
            self.weights.append(float(weight))
            self.kinds.append(output_kind(loss))
            losses.append(loss)
        self.losses = nn.ModuleList(losses)
        self.eye_weight = float(eye_weight)
        self.mouth_weight = float(mouth_weight)
        self.learn_weight = None if learn_weight is None else float(learn_weight)
        if self.learn_weight is not None:
            self.names.append(self.MASK)
            self.weights.append(self.learn_weight)

    def extra_repr(self) -> str:
        return ", ".join(f"{n}×{w:g}" for n, w in zip(self.names, self.weights))

    def forward(self, pred: torch.Tensor, target: torch.Tensor, face: torch.Tensor | None = None,
                eyes: torch.Tensor | None = None, mouth: torch.Tensor | None = None,
                pred_mask: torch.Tensor | None = None, target_mask: torch.Tensor | None = None) -> MixResult:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        if self.learn_weight is not None and (pred_mask is None or target_mask is None):
            raise ValueError("this mix trains a learned mask: pass pred_mask and target_mask")
        with no_autocast(pred.device):
            dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
            pred, target = pred.to(dtype), target.to(dtype)
            weight_map = None
            if face is not None:
                face = face.to(dtype)
                pred, target = pred * face, target * face
                weight_map = face
            emphasis = None
            if eyes is not None and self.eye_weight:
                emphasis = self.eye_weight * eyes.to(dtype)
            if mouth is not None and self.mouth_weight:
                extra = self.mouth_weight * mouth.to(dtype)
                emphasis = extra if emphasis is None else emphasis + extra
            if emphasis is not None:
                weight_map = (1.0 + emphasis) if weight_map is None else weight_map * (1.0 + emphasis)

            unweighted: dict[str, torch.Tensor] = {}
            weighted: dict[str, torch.Tensor] = {}
            total = pred.new_zeros(())
            for name, w, kind, loss in zip(self.names, self.weights, self.kinds, self.losses):
                value = self._reduce(kind, loss(pred, target), weight_map)
                unweighted[name] = value
                weighted[name] = value * w
                total = total + weighted[name]
            if self.learn_weight is not None:
                value = mask_mse(pred_mask, target_mask)
                unweighted[self.MASK] = value
                weighted[self.MASK] = value * self.learn_weight
                total = total + weighted[self.MASK]
        return MixResult(total, unweighted, weighted)

    @staticmethod
    def _reduce(kind: str, out: torch.Tensor, weight_map: torch.Tensor | None) -> torch.Tensor:
        """The masked mean of one loss output (its shape was checked on first use, by LOSSES.build)."""
        if kind == ITEM:
            return out.float().mean() if out.dtype not in (torch.float32, torch.float64) else out.mean()
        assert kind == MAP
        if weight_map is None:
            return out.mean()
        m = centre_crop(weight_map, out.shape[-2], out.shape[-1])
        num = (out * m).sum()
        den = m.sum() * out.shape[1]
        return num / den.clamp_min(torch.finfo(den.dtype).eps)
