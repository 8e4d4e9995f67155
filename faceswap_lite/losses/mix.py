"""LossMix: the configured losses, their weights and the face/eye/mouth masks, in float32.

``total = Σ_i weight_i · loss_i`` where, for a map loss, ``loss_i`` is the masked mean
``Σ(map·m) / Σ(m)`` with ``m = face · (1 + eye_weight·eye + mouth_weight·mouth)`` (centre-cropped to
the map when the map is smaller, as ``valid`` SSIM is), and for a per-item loss it is the batch mean
of the loss on inputs multiplied by the face mask. Inputs of map losses are multiplied by the face
mask too, so pixels outside it neither change the loss nor receive gradient (a windowed loss such as
SSIM would otherwise reach across the mask border).

Everything stays on the device: components are 0-d tensors and no value is read back to the host,
so the training loop decides when to synchronise.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import NonFiniteLossError, PluginError
from ..registry import LOSSES, check_settings, constructor_settings, load_plugins
from .base import ITEM, MAP, no_autocast, output_kind

RESERVED_KEYS = ("name", "weight")


def build_loss(name: str, **settings: Any) -> nn.Module:
    """Instantiate registered loss ``name`` with checked settings (built-ins load on first use)."""
    load_plugins()
    cls = LOSSES.get(name)
    checked = check_settings("loss", name, cls, settings)
    try:
        loss = cls(**checked)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"loss {name!r}: {exc}") from None
    output_kind(loss)
    return loss


def loss_settings(name: str) -> dict[str, Any]:
    """A loss's settings and their defaults (``inspect.Parameter.empty`` when required)."""
    load_plugins()
    return {k: p.default for k, p in constructor_settings(LOSSES.get(name)).items()}


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

    def nonfinite_names(self) -> list[str]:
        """Names of the non-finite components (reads values back: call it off the hot path)."""
        values = torch.stack(list(self.unweighted.values())).detach()
        bad = (~torch.isfinite(values)).cpu().tolist()
        return [n for n, b in zip(self.unweighted, bad) if b]


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

    ``forward(pred, target, face=None, eyes=None, mouth=None)``: images N×C×H×W in [0, 1];
    masks N×1×H×W in [0, 1] (None = no mask / no emphasis). Returns a :class:`MixResult`.
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]], eye_weight: float = 0.0,
                 mouth_weight: float = 0.0) -> None:
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
            weight = spec.pop("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise PluginError(f"loss {name!r} weight must be a number, got {weight!r}")
            loss = build_loss(name, **spec)
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

    def extra_repr(self) -> str:
        return ", ".join(f"{n}×{w:g}" for n, w in zip(self.names, self.weights))

    def forward(self, pred: torch.Tensor, target: torch.Tensor, face: torch.Tensor | None = None,
                eyes: torch.Tensor | None = None, mouth: torch.Tensor | None = None) -> MixResult:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
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
                out = loss(pred, target)
                if not isinstance(out, torch.Tensor):
                    raise PluginError(
                        f"loss {name!r} returned {type(out).__name__}, not a tensor: return an unreduced "
                        "tensor (N×C×H×W map or N per-sample values)"
                    )
                value = self._reduce(name, kind, out, weight_map, pred.shape[0])
                unweighted[name] = value
                weighted[name] = value * w
                total = total + weighted[name]
        return MixResult(total, unweighted, weighted)

    @staticmethod
    def _reduce(name: str, kind: str, out: torch.Tensor, weight_map: torch.Tensor | None, n: int) -> torch.Tensor:
        if kind == ITEM:
            if out.dim() != 1 or out.shape[0] != n:
                raise PluginError(f"loss {name!r} declares per-item output but returned shape "
                                  f"{tuple(out.shape)}; expected ({n},)")
            return out.float().mean() if out.dtype not in (torch.float32, torch.float64) else out.mean()
        assert kind == MAP
        if out.dim() != 4 or out.shape[0] != n:
            raise PluginError(f"loss {name!r} declares a map output but returned shape {tuple(out.shape)}; "
                              f"expected ({n}, C, H, W)")
        if weight_map is None:
            return out.mean()
        try:
            m = centre_crop(weight_map, out.shape[-2], out.shape[-1])
        except ValueError as exc:
            raise PluginError(f"loss {name!r} map does not fit the mask: {exc}") from None
        num = (out * m).sum()
        den = m.sum() * out.shape[1]
        return num / den.clamp_min(torch.finfo(den.dtype).eps)

    def check_finite(self, result: MixResult) -> None:
        """Raise :class:`NonFiniteLossError` naming each non-finite component (synchronises)."""
        bad = result.nonfinite_names()
        if bad:
            raise NonFiniteLossError(f"non-finite value from loss component(s): {', '.join(bad)}")


def describe_loss(name: str) -> list[tuple[str, str]]:
    """``[(setting, default repr), ...]`` for listing."""
    out = []
    for key, default in loss_settings(name).items():
        out.append((key, "(required)" if default is inspect.Parameter.empty else repr(default)))
    return out
