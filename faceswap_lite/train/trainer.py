"""The training loop: the one module that wires data, model, losses, optimiser and outputs together.

Read top to bottom: :func:`train` sets up (:func:`_setup`: every check before the first write), then
a :class:`_Session` loops over :func:`train_step` with the periodic work in its short methods: log
every ``log_every`` steps (where values are read back to the host), validate every ``eval_every``,
preview every ``preview_every``, checkpoint every ``save_every`` and at the end. A non-finite step
is skipped on the device (the fused Adam step takes a ``found_inf`` flag, so no per-step host sync
is needed) and counted. Recovery instead of a stop: after ``max_nonfinite`` skipped steps in a row,
or a training loss that stays blown up (``blowup_factor`` × its best for ``blowup_steps`` steps),
the run rolls back to its last good state (in host memory, taken at each healthy checkpoint) with
the learning rate multiplied by ``rollback_lr_factor``; after ``max_rollbacks`` it stops (exit 3),
the last good checkpoint intact. The skip streak is read only when it could have reached the limit
(every ``max_nonfinite`` steps on a healthy run), so a streak is caught at the step it reaches the limit.

A model that learns a mask (``learns_mask``) runs ``forward_with_mask`` for every side inside
:class:`Sides` and the mix adds its ``mask`` term (``[mask] learn_weight``) per side. From the step
``augment.warp_until`` resolves to (kept in the checkpoint) the model input is the augmented target
itself, not its warped copy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import Config, to_toml
from ..data.device_augment import augment_batch, resolve_augment_on
from ..errors import FaceswapLiteError
from ..evaluate.metrics import masked_psnr, masked_ssim
from ..fsutil import write_atomic
from ..losses import LossMix
from ..models import face_and_mask, learns_mask
from ..registry import MODELS, load_plugins
from .checkpoint import (
    CheckpointError,
    clean_temporaries,
    latest_checkpoint,
    link_or_copy,
    prune,
    save_checkpoint,
    step_path,
)
from .preview import render_grid, save_png
from .schedule import lr_at

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    start_step: int
    step: int
    stopped: str  # "done", "interrupted" (a stop after max_rollbacks raises RollbackLimit)
    metrics: dict[str, float] = field(default_factory=dict)
    skipped_files: dict[str, int] = field(default_factory=dict)
    nonfinite_steps: int = 0
    faces_per_sec: float = 0.0
    is_main: bool = True  # rank 0 (the process that writes and reports)
    rollbacks: int = 0


# ------------------------------------------------------------------------------------------------
# Set-up helpers


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FaceswapLiteError(f"train.device = {name!r} but no CUDA GPU is available; use device = \"cpu\"")
    return dev


def resolve_precision(name: str, device: torch.device) -> str:
    if name == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise FaceswapLiteError("train.precision = \"fp16\" needs a CUDA GPU; use fp32 or bf16 on CPU")
    return name


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]) + [random.getstate()[2] or 0],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, IndexError):
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class Sides(nn.Module):
    """Runs every side in one forward call (what DDP needs: one forward per backward).

    Returns ``(face, mask)`` per side; the mask is None unless the model learns one, then every side
    runs ``forward_with_mask`` (inside this module, so torch.compile compiles it too) and every
    parameter, the mask branches included, gets a gradient each step.
    """

    def __init__(self, model: nn.Module, sides: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.sides = list(sides)

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        return [face_and_mask(self.model, x, s) for x, s in zip(inputs, self.sides)]


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


def check_mask_settings(cfg: Config, model: nn.Module) -> None:
    if learns_mask(model) and not cfg.mask.face:
        raise FaceswapLiteError("the model learns a mask (model.learn_mask) but mask.face = false: the mask is "
                                "trained on the landmark face mask; set mask.face = true or model.learn_mask = false")


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """Join the process group when started by torchrun (NCCL on GPUs, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as tdist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
    return Dist(rank, world, local)


def _model_spec(cfg: Config, sides: Sequence[str]) -> dict[str, Any]:
    return {"model": dict(cfg.model), "sides": list(sides)}


def _check_compatible(state: Mapping[str, Any], spec: Mapping[str, Any], path: Path) -> None:
    old = state.get("model_spec")
    if old is not None and (old.get("model") != spec["model"] or old.get("sides") != spec["sides"]):
        raise CheckpointError(
            f"checkpoint {path} is from an incompatible model ({old.get('model')}, sides "
            f"{old.get('sides')}); this run asks for {spec['model']}, sides {spec['sides']}. "
            "Use a new run folder (-o) or the same [model] settings and face sets"
        )


# ------------------------------------------------------------------------------------------------
# The optimiser step's pieces


def fused_adam_supported(device: torch.device) -> bool:
    """Whether torch's fused Adam runs on ``device``: it takes the skip flag on the device (no host sync)."""
    return device.type in ("cuda", "cpu")


def flag_nonfinite_grads(grads: list[torch.Tensor], found_inf: torch.Tensor, one: torch.Tensor) -> None:
    """Set ``found_inf`` (a float 0-d tensor) to 1 when any gradient holds NaN or inf, on the device.

    This is GradScaler's own check, ``torch._amp_foreach_non_finite_check_and_unscale_``, a private
    torch op (one fused kernel over all gradients, no host sync). With an inverse scale of 1 it only
    checks (``one``: a float 0-d 1 on ``found_inf``'s device, kept by the caller so no step allocates
    it); the gradients are left as they are. Kept behind this one function (and its test) so a
    torch release that moves it breaks one place, loudly.
    """
    if grads:
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, one)


def build_optimizer(cfg: Config, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    opt_cls = torch.optim.AdamW if cfg.train.optimizer == "adamw" else torch.optim.Adam
    return opt_cls(model.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas), eps=cfg.train.eps,
                   weight_decay=cfg.train.weight_decay, fused=fused_adam_supported(device))


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


_UNSET = object()


class _DeferInterrupts:
    """Hold Ctrl-C / SIGTERM while the weights and the step counter change, then raise.

    A checkpoint saved on an interrupt is labelled with the number of optimiser steps its weights
    have taken: the interrupt lands before the step or after the counter, never between.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> _DeferInterrupts:
        self.caught = False
        self.old: dict[int, Any] = {}
        with contextlib.suppress(ValueError):  # not the main thread: nothing to defer
            for sig in self.SIGNALS:
                self.old[sig] = signal.signal(sig, self._hold)
        return self

    def _hold(self, signum: int, frame: Any) -> None:
        self.caught = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        if self.caught and exc[0] is None:
            raise KeyboardInterrupt


@dataclass
class Loop:
    """What one optimiser step needs and changes: the parts, the counters and the device-side sums.

    The sums (``acc_*``, ``streak``, ``bad_*``) stay on the device between log steps: nothing is read
    back per step.
    """

    model: nn.Module
    train_model: nn.Module
    mix: LossMix
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    cfg: Config
    sides: list[str]
    device: torch.device
    amp_dtype: torch.dtype | None
    world: int
    step: int = 0
    lr_scale: float = 1.0
    rollbacks: int = 0

    def __post_init__(self) -> None:
        self.fused = fused_adam_supported(self.device)
        n, dev = len(self.mix.names), self.device
        self.acc_total = torch.zeros((), device=dev)
        self.acc_comp = torch.zeros(len(self.sides), n, 2, device=dev)  # [side, component, unweighted/weighted]
        self.acc_n = torch.zeros((), device=dev)
        self.streak = torch.zeros((), device=dev)  # skipped steps in a row
        self.bad_comp = torch.zeros(len(self.sides), n, device=dev)  # steps each component was non-finite
        self.bad_loss = torch.zeros((), device=dev)  # steps skipped for a non-finite loss
        self.bad_grad = torch.zeros((), device=dev)  # steps skipped for a non-finite gradient only
        self.one = torch.ones((), device=dev)  # flag_nonfinite_grads' inverse scale

    def reset_sums(self) -> None:
        for t in (self.acc_total, self.acc_comp, self.acc_n):
            t.zero_()


def train_step(loop: Loop, batches: Sequence[Mapping[str, torch.Tensor]], lr: float) -> None:
    """One optimiser step on one batch per side; a non-finite loss or gradient skips it on the device.

    The skip flag reaches the optimiser without a host sync: fused Adam takes it (``found_inf``);
    under fp16 a non-finite loss poisons one gradient so GradScaler's own check skips the step;
    on devices without fused Adam (mps, xpu) the flag is read back (one sync per step there).
    ``loop.step`` is incremented together with the weights (interrupts are held in between).
    """
    dev, model, opt, scaler = loop.device, loop.model, loop.optimizer, loop.scaler
    for group in opt.param_groups:
        group["lr"] = lr
    inputs = [b["input"].to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last) for b in batches]
    with torch.autocast(dev.type, dtype=loop.amp_dtype or torch.float32, enabled=loop.amp_dtype is not None):
        outputs = loop.train_model(inputs)
    total = torch.zeros((), device=dev)
    rows = []
    finite = torch.ones((), dtype=torch.bool, device=dev)
    for b, (out, pred_mask) in zip(batches, outputs):
        # The face plane is always passed: with mask.face off it is the valid image area, so the
        # border fill of the augmentation and the outside of the source frame are never trained on.
        # A learned mask is trained on the landmark face mask of the augmented target (mask.face is on).
        target, face, eyes, mouth = (b[k].to(dev, non_blocking=True) for k in ("target", "face", "eyes", "mouth"))
        res = loop.mix(out, target, face, eyes, mouth, pred_mask=pred_mask,
                       target_mask=None if pred_mask is None else face)
        total = total + res.total
        row = torch.stack([torch.stack(list(res.unweighted.values())), torch.stack(list(res.weighted.values()))], 1)
        rows.append(row)
        finite = finite & torch.isfinite(row[:, 0]).all()
    opt.zero_grad(set_to_none=True)
    scaler.scale(torch.where(finite, total, torch.zeros_like(total))).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    loss_bad = (~finite).float()
    if loop.world > 1:  # a non-finite loss on any rank skips the step on all
        torch.distributed.all_reduce(loss_bad, op=torch.distributed.ReduceOp.MAX)
    skipped = loss_bad.clone()
    if scaler.is_enabled():
        if grads:
            grads[0].add_(torch.where(loss_bad > 0, float("nan"), 0.0))
        scaler.unscale_(opt)
    else:
        flag_nonfinite_grads(grads, skipped, loop.one)
    if loop.cfg.train.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), loop.cfg.train.grad_clip)
    with _DeferInterrupts():
        if scaler.is_enabled():
            scaler.step(opt)  # the fused step takes GradScaler's found_inf
            scaler.update()
        elif loop.fused:
            opt.found_inf, opt.grad_scale = skipped, None
            opt.step()
            opt.found_inf = None
        elif not skipped.item():
            opt.step()
        loop.step += 1
    comps = torch.stack(rows).detach()
    ok = skipped == 0
    loop.acc_total += torch.where(ok, total.detach(), 0.0)
    loop.acc_comp += torch.where(ok, comps, 0.0)
    loop.acc_n += ok.float()
    loop.streak.add_(1.0).mul_(skipped)
    loop.bad_comp += (~torch.isfinite(comps[..., 0])).float()
    loop.bad_loss += loss_bad
    loop.bad_grad += skipped - loss_bad


def log_metrics(loop: Loop, lr: float, faces_per_sec: float) -> dict[str, float]:
    """The training metrics since the last log step (the mean over all ranks); resets the sums."""
    if loop.world > 1:
        for t in (loop.acc_total, loop.acc_comp, loop.acc_n):
            torch.distributed.all_reduce(t)
    n = loop.acc_n.item()
    values = (loop.acc_comp / max(n, 1.0)).tolist()
    metrics = {"loss/total": loop.acc_total.item() / n if n else float("nan")}
    for i, s in enumerate(loop.sides):
        for j, name in enumerate(loop.mix.names):
            metrics[f"loss/{s}/{name}"] = values[i][j][0]
            metrics[f"loss_weighted/{s}/{name}"] = values[i][j][1]
    metrics["lr"] = lr
    metrics["perf/faces_per_sec"] = faces_per_sec * loop.world
    loop.reset_sums()
    return metrics


def report_skips(loop: Loop) -> int:
    """Warn about the steps skipped since the last report (steps, not components). Returns how many."""
    n_loss, n_grad = int(loop.bad_loss.item()), int(loop.bad_grad.item())
    if n_loss:
        names = [f"{loop.sides[i]}/{loop.mix.names[j]}" for i, j in loop.bad_comp.nonzero().tolist()]
        log.warning("non-finite loss from %s: %d step(s) skipped up to step %d", ", ".join(names), n_loss, loop.step)
    if n_grad:
        log.warning("non-finite gradient: %d step(s) skipped up to step %d (the loss was finite)", n_grad, loop.step)
    for t in (loop.bad_comp, loop.bad_loss, loop.bad_grad):
        t.zero_()
    return n_loss + n_grad


def check_losses_fit(mix: LossMix, resolution: int, device: torch.device) -> None:
    """Run every loss once on a tiny batch of the model's size: a loss the faces are too small for
    (e.g. ms_ssim with 5 scales at 64 px) is a one-line error before anything is written."""
    g = torch.Generator().manual_seed(0)
    x, y = (torch.rand(2, 3, resolution, resolution, generator=g).to(device) for _ in range(2))
    ones = torch.ones(2, 1, resolution, resolution, device=device)
    with torch.no_grad():
        for name, loss in zip(mix.names, mix.losses):
            try:
                loss(x, y)
            except FaceswapLiteError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure here is the user's loss setting
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise FaceswapLiteError(
                    f"loss {name!r} cannot run on the model's {resolution}×{resolution} faces ({first}); "
                    f"give it settings for smaller images (fewer scales, a smaller window) or train a larger "
                    f"model.resolution") from None
        masks = {} if mix.learn_weight is None else {"pred_mask": ones, "target_mask": ones}
        mix(x, y, ones, ones, ones, **masks)


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
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint {path} does not fit this model ({first[:200]}); "
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


# ------------------------------------------------------------------------------------------------
# Recovery


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, Mapping):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


@dataclass
class Snapshot:
    """The last good state, in host memory: what a roll back returns to."""

    step: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scaler: dict[str, Any] | None

    @classmethod
    def take(cls, loop: Loop) -> Snapshot:
        return cls(loop.step, _to_cpu(loop.model.state_dict()), _to_cpu(loop.optimizer.state_dict()),
                   loop.scaler.state_dict() if loop.scaler.is_enabled() else None)

    def restore(self, loop: Loop) -> None:
        loop.model.load_state_dict(self.model)
        loop.optimizer.load_state_dict(self.optimizer)
        apply_optimizer_settings(loop.optimizer)
        if self.scaler:
            loop.scaler.load_state_dict(self.scaler)
        loop.step = self.step


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


class RollbackLimit(FaceswapLiteError):
    exit_code = 3


# ------------------------------------------------------------------------------------------------
# The loop


@dataclass(frozen=True, eq=False)
class _Run:
    """What one :func:`train` call is built from: the parts, fixed for the call (made by :func:`_setup`)."""

    cfg: Config
    faces: Mapping[str, str | Path]
    sides: list[str]
    dist: Dist
    device: torch.device
    run_dir: Path
    ckpt_dir: Path
    model: nn.Module
    train_model: nn.Module
    mix: LossMix
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    data: dict[str, Any]
    geometry: dict[str, Any]
    spec: dict[str, Any]
    start_step: int
    lr_scale: float
    rollbacks: int
    warp_until: int | None
    augment_on: str  # "workers" or "device" (data.augment_on resolved for the device)
    writer: Any  # a SummaryWriter on rank 0, else None
    end_step: int
    deadline: float | None


def _run_device(cfg: Config, dist: Dist) -> torch.device:
    device = resolve_device(cfg.train.device if dist.world == 1 or cfg.train.device != "auto"
                            else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
    return device


def _find_checkpoint(run_dir: Path,
                     resume: bool | None) -> tuple[Path, tuple[Path, Mapping[str, Any]] | None]:
    """The checkpoint folder and the checkpoint to resume from; refuses what ``resume`` rules out."""
    # Run folder and checkpoint to resume from (checked before anything is written).
    ckpt_dir = run_dir / "checkpoints"
    found = latest_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
    if resume is True and found is None:
        raise FaceswapLiteError(f"--resume: no checkpoint in {ckpt_dir}")
    if resume is False and found is not None:
        raise FaceswapLiteError(f"{run_dir} already holds a run (checkpoint {found[0].name}); "
                                "resume it or choose another -o folder")
    return ckpt_dir, found


def _build_model_and_mix(cfg: Config, sides: Sequence[str],
                         device: torch.device) -> tuple[nn.Module, LossMix, int]:
    """The seeded model (still on the host), its loss mix (checked on a tiny batch) and its resolution."""
    seed_everything(cfg.train.seed)
    model = MODELS.build_table(cfg.model, sides=tuple(sides))
    resolution = int(getattr(model, "resolution", cfg.model.get("resolution", 64)))
    check_mask_settings(cfg, model)
    mix = LossMix(cfg.loss, eye_weight=cfg.mask.eye_weight, mouth_weight=cfg.mask.mouth_weight,
                  learn_weight=cfg.mask.learn_weight if learns_mask(model) else None).to(device)
    check_losses_fit(mix, resolution, device)
    return model, mix, resolution


def _wrap_for_training(model: nn.Module, sides: Sequence[str], cfg: Config, dist: Dist,
                       device: torch.device) -> nn.Module:
    """The module the steps call: every side in one forward, compiled and DDP-wrapped when asked."""
    train_model: nn.Module = Sides(model, sides)
    if cfg.train.compile:
        train_model = torch.compile(train_model)
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(train_model, device_ids=[device.index] if device.type == "cuda" else None)
    return train_model


def _write_run_folder(cfg: Config, run_dir: Path, ckpt_dir: Path, data: Mapping[str, Any],
                      start_step: int) -> Any:
    """Rank 0's first writes, once every check has passed: the folders, config and split.

    Returns the TensorBoard writer.
    """
    from .data import write_split

    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(exist_ok=True)
    (run_dir / "previews").mkdir(exist_ok=True)
    clean_temporaries(ckpt_dir)
    text = to_toml(cfg).encode()
    write_atomic(run_dir / "config.toml", lambda fh: fh.write(text), sync_dir=True)
    write_split(run_dir, data)
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1 if start_step else None)


def _setup(cfg: Config, faces: Mapping[str, str | Path], run_dir: Path, plugins_dirs: Sequence[str],
           resume: bool | None, max_steps: int | None, deadline: float | None) -> _Run:
    """Build the parts and run every check that can fail, then (rank 0 only) write to ``run_dir``."""
    from .data import make_side_data, read_split

    sides = list(faces)
    dist = init_distributed(cfg.train.device)
    device = _run_device(cfg, dist)
    precision = resolve_precision(cfg.train.precision, device)
    load_plugins(list(cfg.plugins.dirs) + list(plugins_dirs))
    ckpt_dir, found = _find_checkpoint(run_dir, resume)
    model, mix, resolution = _build_model_and_mix(cfg, sides, device)

    saved_split = read_split(run_dir) if found is not None else {}
    data = {s: make_side_data(Path(faces[s]), cfg, resolution, side=s, seed=cfg.train.seed, rank=dist.rank,
                              world=dist.world, device=device, previous=saved_split.get(s))
            for s in sides}

    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg, model, device)
    scaler = torch.amp.GradScaler("cuda", enabled=(precision == "fp16"))
    spec = _model_spec(cfg, sides)
    start_step, lr_scale, rollbacks = 0, 1.0, 0
    if found is not None:
        start_step, lr_scale, rollbacks = resume_state(found, spec, cfg, model, optimizer, scaler, dist.main)
    warp_until = warp_until_of_run(cfg, found[1] if found is not None else None)
    train_model = _wrap_for_training(model, sides, cfg, dist, device)
    augment_on = resolve_augment_on(cfg.data.augment_on, device)
    # Everything above can fail and has written nothing; the run folder is written from here on.
    writer = _write_run_folder(cfg, run_dir, ckpt_dir, data, start_step) if dist.main else None

    return _Run(
        cfg=cfg, faces=faces, sides=sides, dist=dist, device=device, run_dir=run_dir, ckpt_dir=ckpt_dir,
        model=model, train_model=train_model, mix=mix, optimizer=optimizer, scaler=scaler,
        amp_dtype={"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision),
        data=data, geometry={s: data[s].sets.store.geometry for s in sides}, spec=spec,
        start_step=start_step, lr_scale=lr_scale, rollbacks=rollbacks,
        warp_until=warp_until, augment_on=augment_on, writer=writer,
        end_step=cfg.train.steps if max_steps is None else min(cfg.train.steps, start_step + max_steps),
        deadline=deadline,
    )


def _progress_bar(progress: bool | None, run: _Run) -> Any:
    show_bar = progress if progress is not None else (run.dist.main and sys.stderr.isatty())
    if not (show_bar and run.dist.main):
        return None
    from tqdm import tqdm

    return tqdm(total=run.end_step, initial=run.start_step, unit="step", dynamic_ncols=True)


class _Session:
    """The mutable state of one :func:`train` call and the periodic work of its loop.

    Host syncs stay off the per-step path: ``loop.streak`` is read back only when a skip streak could
    have reached the limit or on a log step (:meth:`check_streak`), and on a save step (:meth:`maybe_save`).
    """

    def __init__(self, run: _Run, progress: bool | None) -> None:
        tc = run.cfg.train
        self.run = run
        self.loop = Loop(run.model, run.train_model, run.mix, run.optimizer, run.scaler, run.cfg, run.sides,
                         run.device, run.amp_dtype, run.dist.world, step=run.start_step,
                         lr_scale=run.lr_scale, rollbacks=run.rollbacks)
        self.iters = {s: run.data[s].batches(run.start_step, run.augment_on) for s in run.sides}
        self.unwarped = False  # whether the no-warp switch has been logged
        self.preview_faces = {s: run.data[s].preview_faces(tc.preview_faces) for s in run.sides}
        self.metrics: dict[str, float] = {}
        self.nonfinite_total = 0
        self.good = Snapshot.take(self.loop)
        self.blowup = Blowup(tc.blowup_factor, tc.blowup_steps)
        self.bar = _progress_bar(progress, run)
        self.t_last, self.step_last = time.perf_counter(), run.start_step
        self.faces_per_sec = 0.0
        # The earliest step a skip streak could reach the limit.
        self.next_check = run.start_step + tc.max_nonfinite

    def lr(self) -> float:
        tc = self.run.cfg.train
        return lr_at(self.loop.step, tc.lr, tc.warmup_steps, tc.drops) * self.loop.lr_scale

    def run_loop(self) -> str:
        """Step to the end of this call: ``"done"``, or ``"time budget"`` when the deadline came first."""
        run, tc = self.run, self.run.cfg.train
        while self.loop.step < run.end_step:
            lr = self.lr()
            train_step(self.loop, self.next_batches(), lr)
            step = self.loop.step
            if self.bar is not None:
                self.bar.update(step - self.bar.n)

            # The last step of this call: the end, or the time budget spent (logged, evaluated,
            # previewed and saved like the end).
            last = step == run.end_step or (run.deadline is not None and time.perf_counter() >= run.deadline)
            log_now = step % tc.log_every == 0 or last
            # After a roll back the step is not the one just trained: no eval, preview or save for it.
            if (step >= self.next_check or log_now) and self.check_streak(step):
                continue
            if log_now and self.log_step(step, lr):
                continue
            self.evaluate_and_preview(step, last)
            self.maybe_save(step, last)
            if last and step != run.end_step:
                return "time budget"
        return "done"

    def next_batches(self) -> list[Mapping[str, torch.Tensor]]:
        run, cfg, warp_until = self.run, self.run.cfg, self.run.warp_until
        batches = [next(self.iters[s]) for s in run.sides]
        warp_on = warp_until is None or self.loop.step < warp_until
        if run.augment_on == "device":
            batches = [augment_batch(b, cfg.augment, cfg.mask, run.device, warp=warp_on) for b in batches]
        if not warp_on:
            # No-warp finish: the input is the augmented target itself. The warp is still drawn (the
            # data stream stays the one a resume reproduces); the workers still make it too, the
            # device path skips it.
            batches = [{**b, "input": b["target"]} for b in batches]
            if not self.unwarped and run.dist.main:
                log.info("step %d: random warp off from step %d on (augment.warp_until = %g)", self.loop.step,
                         warp_until, cfg.augment.warp_until)
            self.unwarped = True
        return batches

    def check_streak(self, step: int) -> bool:
        """Read the skip streak back; roll back when it reached ``max_nonfinite``. Returns whether it did."""
        tc = self.run.cfg.train
        streak = int(self.loop.streak.item())
        self.next_check = step + tc.max_nonfinite - streak
        if streak < tc.max_nonfinite:
            return False
        self.nonfinite_total += report_skips(self.loop)
        self.roll_back(f"{tc.max_nonfinite} non-finite steps in a row (each skipped)")
        self.next_check = self.loop.step + tc.max_nonfinite
        return True

    def log_step(self, step: int, lr: float) -> bool:
        """Report skips, read the metrics back and log them; roll back on a blown-up loss (True then)."""
        run, tc, loop = self.run, self.run.cfg.train, self.loop
        self.nonfinite_total += report_skips(loop)
        now = time.perf_counter()
        self.faces_per_sec = (run.cfg.data.batch_size * len(run.sides) * (step - self.step_last)
                              / max(now - self.t_last, 1e-9))
        window_start, self.t_last, self.step_last = self.step_last, now, step
        self.metrics = log_metrics(loop, lr, self.faces_per_sec)
        self.write_scalars(self.metrics, step)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{self.metrics['loss/total']:.4f}", fps=f"{self.faces_per_sec:.0f}")
        elif run.dist.main:
            log.info("step %d/%d  loss %.5f  lr %.2e  %.1f faces/s", step, tc.steps,
                     self.metrics["loss/total"], lr, self.metrics["perf/faces_per_sec"])
        if self.blowup.update(self.metrics["loss/total"], step, window_start):
            self.roll_back(f"the training loss stayed above {tc.blowup_factor:g}x its best "
                           f"({self.blowup.best:.4g}) for {tc.blowup_steps} steps")
            return True
        return False

    def write_scalars(self, values: Mapping[str, float], step: int) -> None:
        if self.run.writer is not None:
            for tag, v in values.items():
                self.run.writer.add_scalar(tag, v, step)

    def evaluate_and_preview(self, step: int, last: bool) -> None:
        """Rank 0: validate every ``eval_every`` steps, preview every ``preview_every``; both at the last."""
        run, tc = self.run, self.run.cfg.train
        if not run.dist.main:
            return
        if step % tc.eval_every == 0 or last:
            val = evaluate(run.model, run.data, run.device, run.mix)
            self.metrics.update(val)
            self.write_scalars(val, step)
        if step % tc.preview_every == 0 or last:
            grid = render_grid(run.model, self.preview_faces, run.sides, run.device)
            save_png(run.run_dir / "previews" / f"step_{step:07d}.png", grid)
            save_png(run.run_dir / "previews" / "latest.png", grid)
            if run.writer is not None:
                run.writer.add_image("preview", grid, step, dataformats="HWC")

    def maybe_save(self, step: int, last: bool) -> None:
        """Every ``save_every`` steps and at the last: checkpoint, and keep a good snapshot when healthy."""
        if not (step % self.run.cfg.train.save_every == 0 or last):
            return
        healthy = not self.loop.streak.item() and self.blowup.since is None
        if healthy or last:
            self.checkpoint(periodic=True)
        if healthy:
            self.good = Snapshot.take(self.loop)

    def checkpoint(self, periodic: bool) -> None:
        """Save ``last.pt`` (and, when periodic, a kept step copy). A periodic save inside an unhealthy
        window (a skip streak, a blown-up loss) is skipped: last.pt stays the last good checkpoint,
        the one a stop after max_rollbacks names. The end-of-call and interrupt saves always write."""
        run, loop, tc = self.run, self.loop, self.run.cfg.train
        if not run.dist.main:
            return
        state = {
            "step": loop.step, "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else None,
            "config": run.cfg.to_dict(), "model_spec": run.spec, "rng": rng_state(),
            "metrics": dict(self.metrics), "faces": {s: str(Path(run.faces[s]).resolve()) for s in run.sides},
            "geometry": run.geometry, "lr_scale": loop.lr_scale, "rollbacks": loop.rollbacks,
            "warp_until": run.warp_until,
        }
        last = save_checkpoint(run.ckpt_dir / "last.pt", state)
        if periodic and tc.keep > 0:
            link_or_copy(last, step_path(run.ckpt_dir, loop.step))
            prune(run.ckpt_dir, tc.keep)

    def roll_back(self, why: str) -> None:
        run, loop, tc = self.run, self.loop, self.run.cfg.train
        if loop.rollbacks >= tc.max_rollbacks:
            raise RollbackLimit(
                f"stopped at step {loop.step}: {why}, after {loop.rollbacks} roll back(s) (train.max_rollbacks); "
                f"the last good checkpoint is {run.ckpt_dir / 'last.pt'}. Lower train.lr, add train.grad_clip, "
                "or check the loss named in the warnings")
        before_step, before_lr = loop.step, self.lr()
        self.good.restore(loop)
        loop.rollbacks += 1
        loop.lr_scale *= tc.rollback_lr_factor
        loop.reset_sums()
        loop.streak.zero_()
        self.blowup.since = None
        self.iters = {s: run.data[s].batches(loop.step, run.augment_on) for s in run.sides}
        self.t_last, self.step_last = time.perf_counter(), loop.step
        after_lr = self.lr()
        if run.dist.main:
            log.warning("rolled back from step %d to step %d after %s: lr %.3g -> %.3g from now on "
                        "(roll back %d of at most %d)", before_step, loop.step, why, before_lr, after_lr,
                        loop.rollbacks, tc.max_rollbacks)
        if run.writer is not None:
            run.writer.add_scalar("train/rollbacks", loop.rollbacks, before_step)

    def save_on_interrupt(self) -> None:
        if self.run.dist.main:
            log.warning("interrupted at step %d: saving a checkpoint", self.loop.step)
        if self.loop.step > self.run.start_step:
            self.checkpoint(periodic=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.run.writer is not None:
            self.run.writer.flush()
            self.run.writer.close()

    def result(self, stopped: str) -> TrainResult:
        run = self.run
        skipped = {}
        for s in run.sides:
            for reason, n in run.data[s].skipped_counts().items():
                skipped[f"{s}:{reason}"] = n
        return TrainResult(run.run_dir, run.start_step, self.loop.step, stopped, self.metrics, skipped,
                           self.nonfinite_total, self.faces_per_sec, run.dist.main, self.loop.rollbacks)


def train(cfg: Config, faces: Mapping[str, str | Path], run_dir: str | Path, plugins_dirs: Sequence[str] = (),
          resume: bool | None = None, progress: bool | None = None, max_steps: int | None = None,
          max_seconds: float | None = None) -> TrainResult:
    """Train on the face sets ``faces`` (``{"a": folder}`` or ``{"a": ..., "b": ...}``) into ``run_dir``.

    resume: None = resume when ``run_dir`` holds a checkpoint; True = require one; False = refuse to
    overwrite an existing run. max_steps: stop after this many steps in this call (tests, benchmarks).
    max_seconds: stop (with a checkpoint, ``stopped = "time budget"``) at the first step boundary
    this many seconds after the call began, setup included (compare's ``--minutes``; one process:
    ranks of a DDP run would not agree on the step).
    """
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds
    run = _setup(cfg, faces, Path(run_dir), plugins_dirs, resume, max_steps, deadline)
    session = _Session(run, progress)
    try:
        with _SigtermToInterrupt():
            stopped = session.run_loop()
    except KeyboardInterrupt:
        stopped = "interrupted"
        session.save_on_interrupt()
    finally:
        session.close()
    return session.result(stopped)


@torch.no_grad()
def evaluate(model: nn.Module, data: Mapping[str, Any], device: torch.device,
             mix: LossMix | None = None) -> dict[str, float]:
    """Validation per side on the held-out faces, measured on the face: ``val/<side>/psnr`` and
    ``ssim`` inside the face region (:mod:`faceswap_lite.evaluate.metrics`), and ``val/<side>/loss``,
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
            sums = {"psnr": 0.0, "ssim": 0.0, "loss": 0.0}
            if learns_mask(model):
                sums["mask_iou"] = 0.0
            n = val["target"].shape[0]
            for start in range(0, n, 32):
                part = {k: v[start:start + 32].to(device, torch.float32) for k, v in val.items()}
                x = part["target"]
                y, m = face_and_mask(model, x, s)
                y = y.float()
                sums["psnr"] += masked_psnr(y, x, part["region"]).nansum().item()
                sums["ssim"] += masked_ssim(y, x, part["region"]).nansum().item()
                if m is not None:
                    sums["mask_iou"] += mask_iou(m, part["region"]).sum().item()
                if mix is not None:
                    masks = {} if m is None else {"pred_mask": m, "target_mask": part["face"]}
                    res = mix(y, x, part["face"], part["eyes"], part["mouth"], **masks)
                    sums["loss"] += res.total.item() * x.shape[0]
            for k, v in sums.items():
                if k != "loss" or mix is not None:
                    out[f"val/{s}/{k}"] = v / n
    finally:
        model.train(was)
    return out


def mask_iou(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-face IoU (N) of two N×1×H×W masks thresholded at ``threshold``; 1 where both are empty."""
    p, t = pred > threshold, target > threshold
    inter = (p & t).flatten(1).sum(1).float()
    union = (p | t).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))


class _SigtermToInterrupt:
    """Treat SIGTERM like Ctrl-C (save, then exit) while training runs in the main thread."""

    def __enter__(self) -> _SigtermToInterrupt:
        self._old = None
        try:
            self._old = signal.signal(signal.SIGTERM, self._handler)
        except ValueError:  # not the main thread
            self._old = None
        return self

    @staticmethod
    def _handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
