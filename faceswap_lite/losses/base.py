"""What every loss plugin shares: the output kinds and float32 computation under autocast."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

MAP = "map"  # forward returns N×C×h×w or N×1×h×w (h ≤ H by an even border)
ITEM = "item"  # forward returns N per-sample values
OUTPUT_KINDS = (MAP, ITEM)


def output_kind(loss: torch.nn.Module) -> str:
    """The output kind a loss class declares with its ``output`` attribute (default: map)."""
    kind = getattr(loss, "output", MAP)
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"loss {type(loss).__name__}.output must be one of {OUTPUT_KINDS}, got {kind!r}")
    return kind


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
