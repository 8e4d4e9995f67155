"""What every loss plugin shares: the output kinds, float32 under autocast, and the loss contract.

``validate`` and ``facts`` are the loss registry's hooks (``LOSSES.build`` and ``LOSSES.describe``).
A loss class may also define two optional classmethods, read through :func:`settings_that_fit` and
:func:`unavailable` by code that picks a loss's settings itself (the evaluate panel):

``fits(settings, resolution) -> dict | None``
    ``settings`` changed as little as images of ``resolution`` px need (MS-SSIM: fewer scales), or
    None when no settings of the loss fit them. Without it a loss fits every size unchanged.
``available(settings) -> str | None``
    None when the loss can be built with ``settings`` from files already on this machine; else one
    line saying which file is missing and where to put it (LPIPS: its ImageNet trunk weights).
    Without it a loss is always available.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import torch

from ..errors import PluginError
from ..settings import check_value

MAP = "map"  # forward returns N×C×h×w or N×1×h×w (h ≤ H by an even border)
ITEM = "item"  # forward returns N per-sample values
OutputKind = Literal["map", "item"]  # what a loss's ``output`` may be


def output_kind(loss: torch.nn.Module) -> str:
    """The output kind a loss class declares with its ``output`` attribute (default: map)."""
    return check_value(f"loss {type(loss).__name__}.output", getattr(loss, "output", MAP), OutputKind,
                       error=ValueError)


INJECTED: tuple[str, ...] = ()  # a loss gets its settings only


def settings_that_fit(cls: type, settings: Mapping[str, Any], resolution: int) -> dict[str, Any] | None:
    """``cls.fits(settings, resolution)``, or ``settings`` unchanged for a loss without that hook."""
    fits = getattr(cls, "fits", None)
    return dict(settings) if fits is None else fits(settings, resolution)


def unavailable(cls: type, settings: Mapping[str, Any]) -> str | None:
    """``cls.available(settings)``: why the loss cannot be built here without a download, or None."""
    available = getattr(cls, "available", None)
    return None if available is None else available(settings)


def facts(cls: type) -> dict[str, str]:
    """What a listing shows besides the settings: the output kind."""
    kind = getattr(cls, "output", MAP)
    return {"output": "per-pixel map" if kind == MAP else "per-item" if kind == ITEM else repr(kind)}


def validate(name: str, loss: Any, injected: Mapping[str, Any]) -> None:
    """A built loss is an ``nn.Module`` with a known output kind; its first forward checks the shape."""
    if not isinstance(loss, torch.nn.Module):
        raise PluginError(f"loss {name!r} ({type(loss).__qualname__}) is not a torch.nn.Module")
    try:
        kind = output_kind(loss)
    except ValueError as exc:
        raise PluginError(f"loss {name!r}: {exc}") from None

    def check_first_output(module: torch.nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        check_output(name, kind, args[0] if args else kwargs["pred"], out)
        handle.remove()  # checked once, on the first use (before training's first step): later calls pay nothing

    handle = loss.register_forward_hook(check_first_output, with_kwargs=True)


def check_output(name: str, kind: str, pred: torch.Tensor, out: Any) -> None:
    """Raise a one-line PluginError when ``out`` breaks the contract of ``kind`` for input ``pred``."""
    if not isinstance(out, torch.Tensor):
        raise PluginError(f"loss {name!r} returned {type(out).__name__}, not a tensor: return an unreduced "
                          "tensor (N×C×H×W map or N per-sample values)")
    n, c, h, w = pred.shape
    shape = tuple(out.shape)
    if kind == ITEM:
        if shape != (n,):
            raise PluginError(f"loss {name!r} declares per-item output but returned shape {shape} for input "
                              f"{tuple(pred.shape)}; expected ({n},)")
        return
    fits = (out.dim() == 4 and shape[0] == n and shape[1] in (1, c) and shape[2] <= h and shape[3] <= w
            and (h - shape[2]) % 2 == 0 and (w - shape[3]) % 2 == 0)
    if not fits:
        raise PluginError(f"loss {name!r} declares a map output but returned shape {shape} for input "
                          f"{tuple(pred.shape)}; expected ({n}, 1 or {c}, {h}, {w}), or smaller by an even border")


@contextlib.contextmanager
def no_autocast(device: torch.device | str) -> Iterator[None]:
    """Turn autocast off for ``device``'s type (statistics must not run in bf16/fp16)."""
    device_type = torch.device(device).type
    with torch.autocast(device_type=device_type, enabled=False):
        yield


def as_float(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Upcast half/bfloat16 (and integer) tensors to float32; keep float32 and float64 as they are.

    When the inputs disagree (float32 and float64), both become the wider type.
    """
    dtype = torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32
    return tuple(t.to(dtype) for t in tensors)
