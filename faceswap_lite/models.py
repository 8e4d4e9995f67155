"""Build the configured model plugin: ``[model]`` table -> ``nn.Module``, settings checked first.

A model plugin is an ``nn.Module`` registered with ``@register_model("name")``. Its constructor
keyword arguments are its settings (the ``[model]`` keys other than ``name``), plus ``sides``, which
the trainer passes (one decoder per face set). It exposes ``resolution`` (input/output side in
pixels) and ``forward(x, side)``: N×3×R×R in [0, 1] -> float32 N×3×R×R in [0, 1].
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from .errors import PluginError
from .registry import MODELS, check_settings, constructor_settings, load_plugins

TRAINER_KEYS = ("sides",)  # set by the trainer, never by the config


def build_model(model_cfg: Mapping[str, Any], sides: Sequence[str]) -> nn.Module:
    """Instantiate ``model_cfg["name"]`` (default "original") with its checked settings and ``sides``.

    Loads the built-in and installed plugins first (idempotent). Errors name the model and, for a
    misspelt setting or model name, suggest the closest one.
    """
    cfg = dict(model_cfg)
    name = cfg.pop("name", "original")
    load_plugins()
    cls = MODELS.get(name)
    for key in TRAINER_KEYS:
        if key in cfg:
            raise PluginError(f"model {name!r}: {key!r} is set by the trainer from the face sets given, "
                              f"not in the [model] table; remove it")
    settings = check_settings("model", name, cls, cfg)
    if "sides" in constructor_settings(cls):
        settings["sides"] = tuple(sides)
    try:
        model = cls(**settings)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"model {name!r}: {exc}") from None
    except (MemoryError, RuntimeError) as exc:
        if not isinstance(exc, MemoryError) and "alloc" not in str(exc):
            raise
        raise PluginError(f"model {name!r} with settings {settings} does not fit in memory; "
                          "use a smaller width or latent") from None
    if not isinstance(model, nn.Module):
        raise PluginError(f"model {name!r} ({cls.__module__}.{cls.__qualname__}) is not a torch.nn.Module")
    if not isinstance(getattr(model, "resolution", None), int):
        raise PluginError(f"model {name!r} must set an int attribute 'resolution' (its input size in pixels)")
    return model


def model_settings(name: str) -> dict[str, Any]:
    """A model's config settings and their defaults (``inspect.Parameter.empty`` when required)."""
    load_plugins()
    params = constructor_settings(MODELS.get(name))
    return {k: p.default for k, p in params.items() if k not in TRAINER_KEYS}


def describe_model(name: str) -> list[tuple[str, str]]:
    """``[(setting, default repr), ...]`` for listing."""
    return [(k, "(required)" if v is inspect.Parameter.empty else repr(v)) for k, v in model_settings(name).items()]
