"""The learning rate as a pure function of the step: no scheduler state, resume needs only the step."""

from __future__ import annotations

from collections.abc import Sequence


def lr_at(step: int, lr: float, warmup_steps: int = 0, drops: Sequence[Sequence[float]] = ()) -> float:
    """Learning rate for optimiser step ``step`` (0-based).

    Linear warm-up from ``lr / warmup_steps`` to ``lr`` over the first ``warmup_steps`` steps, then
    ``lr`` times the factor of every drop ``[at_step, factor]`` with ``at_step <= step``
    (factors multiply: ``[[1000, 0.5], [2000, 0.5]]`` gives lr/4 from step 2000 on).

    >>> [lr_at(s, 1.0, warmup_steps=4) for s in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    >>> lr_at(2500, 1.0, drops=[[1000, 0.5], [2000, 0.1]])
    0.05
    """
    value = lr * (min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0)
    for at, factor in sorted(drops):
        if step >= at:
            value *= factor
    return value
