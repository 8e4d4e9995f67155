"""Recovery instead of a stop: the last good state in host memory, the blow-up watch, the roll back.

After ``max_nonfinite`` skipped steps in a row, or a training loss that stays blown up
(``blowup_factor`` × its best for ``blowup_steps`` steps), the run rolls back to its last good
state (a :class:`Snapshot`, taken at each healthy checkpoint) with the learning rate multiplied by
``rollback_lr_factor``; after ``max_rollbacks`` it stops (:class:`RollbackLimit`, exit 3), the last
good checkpoint intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import FaceswapLiteError
from .resume import apply_optimizer_settings
from .step import Loop


class RollbackLimit(FaceswapLiteError):
    exit_code = 3


def to_host(obj: Any) -> Any:
    """A copy of ``obj`` (tensors, nested in dicts, lists and tuples) with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, Mapping):
        return {k: to_host(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_host(v) for v in obj)
    return obj


@dataclass
class Snapshot:
    """The last good state, in host memory: what a roll back returns to."""

    step: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scaler: dict[str, Any] | None
    ema: dict[str, Any] | None = None

    @classmethod
    def take(cls, loop: Loop) -> Snapshot:
        return cls(loop.step, to_host(loop.model.state_dict()), to_host(loop.optimizer.state_dict()),
                   loop.scaler.state_dict() if loop.scaler.is_enabled() else None,
                   None if loop.ema is None else to_host(loop.ema.state_dict()))

    def restore(self, loop: Loop) -> None:
        loop.model.load_state_dict(self.model)
        loop.optimizer.load_state_dict(self.optimizer)
        apply_optimizer_settings(loop.optimizer)
        if self.scaler:
            loop.scaler.load_state_dict(self.scaler)
        if self.ema is not None and loop.ema is not None:
            loop.ema.load_state_dict(self.ema)
        loop.step = self.step


def roll_back(loop: Loop, good: Snapshot, lr_factor: float) -> None:
    """Return ``loop`` to ``good``: one roll back more, the learning rate scaled by ``lr_factor``,
    the sums and the skip streak cleared."""
    good.restore(loop)
    loop.rollbacks += 1
    loop.lr_scale *= lr_factor
    loop.reset_sums()
    loop.streak.zero_()


class Blowup:
    """Watches the logged training loss: blown up when above ``factor`` × its best for ``steps`` steps."""

    def __init__(self, factor: float, steps: int) -> None:
        self.factor, self.steps = factor, steps
        self.best = float("inf")
        self.since: int | None = None

    def update(self, loss: float, step: int, window_start: int) -> bool:
        if not np.isfinite(loss):
            return False
        if loss > self.factor * self.best:
            self.since = window_start if self.since is None else self.since
            return step - self.since >= self.steps
        self.since = None
        self.best = min(self.best, loss)
        return False
