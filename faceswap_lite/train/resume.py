"""Resuming a run: which checkpoint, whether it fits this run's model, what it brings back, what changed.

A checkpoint holds the model spec it was trained with (:func:`model_spec`); a resume refuses one
from another model. The weights, optimiser moments, loss scaler, RNG state, step, roll-back count
and learning-rate scale come back; the config's optimiser settings win over the saved ones, and
the training settings that changed since are logged. The no-warp step (``augment.warp_until``
resolved to a step) is the checkpoint's unless that setting was changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import Config
from ..device import set_rng_state
from ..errors import FaceswapLiteError, first_line
from ..runfolder import RunFolder
from .checkpoint import CheckpointError, latest_checkpoint

# The training log keeps one logger name wherever in train/ a line comes from (it prints in every line).
log = logging.getLogger("faceswap_lite.train.trainer")

_UNSET = object()


def find_resume(run: RunFolder, resume: bool | None) -> tuple[Path, Mapping[str, Any]] | None:
    """The checkpoint to resume from (None: a first start); refuses what ``resume`` rules out.

    resume: None = resume when the run folder holds a checkpoint; True = require one; False = refuse
    to overwrite an existing run.
    """
    found = latest_checkpoint(run.checkpoints) if run.is_run() else None
    if resume is True and found is None:
        raise FaceswapLiteError(f"--resume: no checkpoint in {run.checkpoints}")
    if resume is False and found is not None:
        raise FaceswapLiteError(f"{run.path} already holds a run (checkpoint {found[0].name}); "
                                "resume it or choose another -o folder")
    return found


def model_spec(cfg: Config, sides: Sequence[str]) -> dict[str, Any]:
    """What a checkpoint's weights fit: the ``[model]`` settings and the sides (``load_run_model`` rebuilds from it)."""
    return {"model": dict(cfg.model), "sides": list(sides)}


def _check_compatible(state: Mapping[str, Any], spec: Mapping[str, Any], path: Path) -> None:
    old = state.get("model_spec")
    if old is not None and (old.get("model") != spec["model"] or old.get("sides") != spec["sides"]):
        raise CheckpointError(
            f"checkpoint {path} is from an incompatible model ({old.get('model')}, sides "
            f"{old.get('sides')}); this run asks for {spec['model']}, sides {spec['sides']}. "
            "Use a new run folder (-o) or the same [model] settings and face sets"
        )


def apply_optimizer_settings(optimizer: torch.optim.Optimizer) -> None:
    """After ``load_state_dict``: the config's betas, eps, weight decay and Adam/AdamW flavour win.

    ``load_state_dict`` brings back the saved hyper-parameters; the moments (the state) are kept.
    The learning rate is set every step from the schedule.
    """
    for group in optimizer.param_groups:
        group.update({k: v for k, v in optimizer.defaults.items() if k != "lr"})


def changed_settings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``["train.betas (0.5, 0.999) -> (0.9, 0.99)", ...]``: training settings that differ on resume."""
    def flat(d: Any, prefix: str) -> dict[str, Any]:
        if isinstance(d, Mapping):
            return {k: v for key, sub in d.items() for k, v in flat(sub, f"{prefix}{key}.").items()}
        if isinstance(d, list) and d and all(isinstance(x, Mapping) for x in d):
            return {k: v for i, sub in enumerate(d) for k, v in flat(sub, f"{prefix}{i}.").items()}
        return {prefix[:-1]: d}

    def show(v: Any) -> str:
        return "(unset)" if v is _UNSET else repr(tuple(v) if isinstance(v, list) else v)

    sections = ("data", "augment", "mask", "train", "loss")
    a = flat({k: old.get(k) for k in sections if k in old}, "")
    b = flat({k: new.get(k) for k in sections}, "")
    return [f"{k} {show(a.get(k, _UNSET))} -> {show(b.get(k, _UNSET))}"
            for k in sorted(set(a) | set(b)) if a.get(k, _UNSET) != b.get(k, _UNSET)]


def resume_state(found: tuple[Path, Mapping[str, Any]], spec: Mapping[str, Any], cfg: Config, model: nn.Module,
                 optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                 main: bool) -> tuple[int, float, int]:
    """Load a checkpoint into the parts, then apply this run's optimiser settings and log what changed.

    Returns (step, lr scale, roll backs so far).
    """
    path, state = found
    _check_compatible(state, spec, path)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this model ({first_line(exc)}); "
                              "use a new run folder or the model settings it was trained with") from None
    apply_optimizer_settings(optimizer)
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state.get("rng", {}))
    step = int(state["step"])
    if main:
        log.info("resuming from %s at step %d", path, step)
        changes = changed_settings(state.get("config", {}), cfg.to_dict())
        if changes:
            log.info("resume: %s", "; ".join(changes))
    return step, float(state.get("lr_scale", 1.0)), int(state.get("rollbacks", 0))


def resolve_warp_until(value: float, steps: int) -> int | None:
    """``augment.warp_until`` as a step: None (0, warp to the end), round(value·steps) below 1, else the step."""
    if value <= 0:
        return None
    return round(value * steps) if value < 1 else int(value)


def warp_until_of_run(cfg: Config, state: Mapping[str, Any] | None) -> int | None:
    """The no-warp step of this run: the checkpoint's, unless ``augment.warp_until`` was changed since."""
    if state is not None and "warp_until" in state:
        old = dict(state.get("config", {}).get("augment", {})).get("warp_until", 0.0)
        if old == cfg.augment.warp_until:
            return state["warp_until"]
    return resolve_warp_until(cfg.augment.warp_until, cfg.train.steps)
