"""The model plugin contract, checked by ``MODELS.build`` (the model registry's hooks).

A model plugin is an ``nn.Module`` registered with ``@register_model("name")``. Its constructor
keyword arguments are its settings (the ``[model]`` keys other than ``name``), plus ``sides``, which
the trainer passes (one decoder per face set): ``MODELS.build(name, settings, sides=("a", "b"))``. It
exposes ``resolution`` (input/output side in pixels), ``sides`` and ``forward(x, side)``:
N×3×R×R in [0, 1] -> float32 N×3×R×R in [0, 1]. A model that learns a mask sets ``learns_mask``
true and adds ``forward_with_mask(x, side)`` -> (face, mask N×1×R×R in [0, 1]); :func:`learns_mask`
and :func:`face_and_mask` are the one place the trainer, preview and convert read that contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .errors import PluginError

INJECTED = ("sides",)  # set by the trainer, never by the config


def validate(name: str, model: Any, injected: Mapping[str, Any]) -> None:
    """A built model is an ``nn.Module`` with an int ``resolution`` and the sides it was given."""
    where = f"model {name!r} ({type(model).__module__}.{type(model).__qualname__})"
    if not isinstance(model, nn.Module):
        raise PluginError(f"{where} is not a torch.nn.Module")
    if not isinstance(getattr(model, "resolution", None), int):
        raise PluginError(f"{where} must set an int attribute 'resolution' (its input size in pixels)")
    sides = injected.get("sides")
    if sides is not None and tuple(getattr(model, "sides", ())) != tuple(sides):
        raise PluginError(f"{where} must keep the sides it is given as its attribute 'sides' "
                          f"({tuple(sides)}), got {getattr(model, 'sides', None)!r}")


def learns_mask(model: nn.Module) -> bool:
    """The contract's flag: ``learns_mask`` true means ``forward_with_mask`` returns a mask."""
    return bool(getattr(model, "learns_mask", False))


def face_and_mask(model: nn.Module, x: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(face, mask)`` of ``x`` through ``side``'s decoder; the mask is None unless the model learns one."""
    if learns_mask(model):
        return model.forward_with_mask(x, side)
    return model(x, side), None


def facts(cls: type) -> dict[str, str]:
    """Nothing beyond the settings (resolution is one of them)."""
    return {}
