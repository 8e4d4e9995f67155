"""The training loop: the one module that wires data, model, losses, optimiser and outputs together.

Flat and readable top to bottom. Periodic work is inline: log every ``log_every`` steps (the only
place values are read back to the host), validate every ``eval_every``, preview every
``preview_every``, checkpoint every ``save_every`` and at the end. A non-finite step is skipped on
the device (the fused Adam step takes a ``found_inf`` flag, so no per-step host sync is needed) and
counted; ``max_nonfinite`` in a row stop the run with the last good checkpoint intact.
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
from ..errors import FaceswapLiteError
from ..fsutil import write_atomic
from ..losses import LossMix, build_loss
from ..registry import load_plugins
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
    stopped: str  # "done", "interrupted", "nonfinite"
    metrics: dict[str, float] = field(default_factory=dict)
    skipped_files: dict[str, int] = field(default_factory=dict)
    nonfinite_steps: int = 0
    faces_per_sec: float = 0.0
    is_main: bool = True  # rank 0 (the process that writes and reports)


class NonFiniteStop(FaceswapLiteError):
    exit_code = 3


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
    """Runs every side in one forward call (what DDP needs: one forward per backward)."""

    def __init__(self, model: nn.Module, sides: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.sides = list(sides)

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [self.model(x, s) for x, s in zip(inputs, self.sides)]


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
# Metrics


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-item PSNR in dB for images in [0, 1]."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


# ------------------------------------------------------------------------------------------------
# The loop


def train(cfg: Config, faces: Mapping[str, str | Path], run_dir: str | Path, plugins_dirs: Sequence[str] = (),
          resume: bool | None = None, progress: bool | None = None, max_steps: int | None = None) -> TrainResult:
    """Train on the face sets ``faces`` (``{"a": folder}`` or ``{"a": ..., "b": ...}``) into ``run_dir``.

    resume: None = resume when ``run_dir`` holds a checkpoint; True = require one; False = refuse to
    overwrite an existing run. max_steps: stop after this many steps in this call (tests, benchmarks).
    """
    from ..models import build_model
    from .data import make_side_data

    run_dir = Path(run_dir)
    sides = list(faces)
    dist = init_distributed(cfg.train.device)
    device = resolve_device(cfg.train.device if dist.world == 1 or cfg.train.device != "auto"
                            else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
    precision = resolve_precision(cfg.train.precision, device)
    load_plugins(list(cfg.plugins.dirs) + list(plugins_dirs))

    # Run folder and checkpoint to resume from (checked before anything is written).
    ckpt_dir = run_dir / "checkpoints"
    found = latest_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
    if resume is True and found is None:
        raise FaceswapLiteError(f"--resume: no checkpoint in {ckpt_dir}")
    if resume is False and found is not None:
        raise FaceswapLiteError(f"{run_dir} already holds a run (checkpoint {found[0].name}); "
                                "resume it or choose another -o folder")

    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, sides)
    resolution = int(getattr(model, "resolution", cfg.model.get("resolution", 64)))
    spec = _model_spec(cfg, sides)

    data = {s: make_side_data(Path(faces[s]), cfg, resolution, side=s, seed=cfg.train.seed,
                              rank=dist.rank, world=dist.world, device=device)
            for s in sides}

    model = model.to(device).to(memory_format=torch.channels_last)
    mix = LossMix(cfg.loss, eye_weight=cfg.mask.eye_weight, mouth_weight=cfg.mask.mouth_weight).to(device)
    fused_ok = device.type in ("cuda", "cpu")
    opt_cls = torch.optim.AdamW if cfg.train.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas),
                        weight_decay=cfg.train.weight_decay, fused=fused_ok)
    scaler = torch.amp.GradScaler("cuda", enabled=(precision == "fp16"))
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    start_step = 0
    if found is not None:
        path, state = found
        _check_compatible(state, spec, path)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"checkpoint {path} does not fit this model ({first[:200]}); "
                                  "use a new run folder or the model settings it was trained with") from None
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state.get("rng", {}))
        start_step = int(state["step"])
        if dist.main:
            log.info("resuming %s from %s at step %d", run_dir, path.name, start_step)

    train_model: nn.Module = Sides(model, sides)
    if cfg.train.compile:
        train_model = torch.compile(train_model)
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(train_model, device_ids=[device.index] if device.type == "cuda" else None)

    writer = None
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(exist_ok=True)
        (run_dir / "previews").mkdir(exist_ok=True)
        clean_temporaries(ckpt_dir)
        text = to_toml(cfg).encode()
        write_atomic(run_dir / "config.toml", lambda fh: fh.write(text), sync_dir=True)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1 if start_step else None)

    total_steps = cfg.train.steps
    end_step = total_steps if max_steps is None else min(total_steps, start_step + max_steps)
    batch = cfg.data.batch_size
    iters = {s: data[s].batches(start_step) for s in sides}
    preview_faces = {s: data[s].preview_faces(cfg.train.preview_faces) for s in sides}

    # Device-side accumulators between log steps: no host sync per step.
    n_comp = len(mix.names)
    acc_total = torch.zeros((), device=device)
    acc_comp = torch.zeros(len(sides), n_comp, 2, device=device)  # [side, component, unweighted/weighted]
    acc_n = torch.zeros((), device=device)
    bad_streak = torch.zeros((), device=device)
    bad_comp = torch.zeros(len(sides), n_comp, device=device)
    one = torch.ones((), device=device)
    nonfinite_total = 0
    metrics: dict[str, float] = {}

    def checkpoint(step: int, periodic: bool) -> None:
        if not dist.main:
            return
        state = {
            "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "config": cfg.to_dict(), "model_spec": spec, "rng": rng_state(),
            "metrics": dict(metrics), "faces": {s: str(Path(faces[s]).resolve()) for s in sides},
        }
        last = save_checkpoint(ckpt_dir / "last.pt", state)
        if periodic and cfg.train.keep > 0:
            link_or_copy(last, step_path(ckpt_dir, step))
            prune(ckpt_dir, cfg.train.keep)

    bar = None
    show_bar = progress if progress is not None else (dist.main and sys.stderr.isatty())
    if show_bar and dist.main:
        from tqdm import tqdm

        bar = tqdm(total=end_step, initial=start_step, unit="step", dynamic_ncols=True)

    ssim_metric = _ssim_metric(device) if dist.main else None
    stopped = "done"
    step = start_step
    t_last, step_last = time.perf_counter(), start_step
    faces_per_sec = 0.0
    sigterm = _SigtermToInterrupt()
    try:
        with sigterm:
            while step < end_step:
                lr = lr_at(step, cfg.train.lr, cfg.train.warmup_steps, cfg.train.drops)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                batches = [next(iters[s]) for s in sides]
                inputs = [b["input"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                          for b in batches]
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    outputs = train_model(inputs)
                total = torch.zeros((), device=device)
                comp_rows = []
                finite = torch.ones((), dtype=torch.bool, device=device)
                for b, out in zip(batches, outputs):
                    res = mix(out, b["target"].to(device, non_blocking=True),
                              b["face"].to(device, non_blocking=True) if cfg.mask.face else None,
                              b["eyes"].to(device, non_blocking=True),
                              b["mouth"].to(device, non_blocking=True))
                    total = total + res.total
                    unweighted = torch.stack(list(res.unweighted.values()))
                    weighted = torch.stack(list(res.weighted.values()))
                    comp_rows.append(torch.stack([unweighted, weighted], dim=1))
                    finite = finite & torch.isfinite(unweighted).all()
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(torch.where(finite, total, torch.zeros_like(total))).backward()
                # Skip flag, on the device: a non-finite loss on any rank, or a non-finite gradient.
                found_inf = (~finite).float()
                if dist.world > 1:
                    torch.distributed.all_reduce(found_inf, op=torch.distributed.ReduceOp.MAX)
                if scaler.is_enabled():
                    scaler.unscale_(optimizer)
                else:
                    grads = [p.grad for p in model.parameters() if p.grad is not None]
                    torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, one)
                if cfg.train.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                if scaler.is_enabled():
                    # GradScaler hands its own found_inf (non-finite gradients) to the fused step.
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.found_inf = found_inf
                    optimizer.grad_scale = None
                    optimizer.step()
                    optimizer.found_inf = None
                comps = torch.stack(comp_rows)
                ok = 1.0 - found_inf
                acc_total += torch.where(ok > 0, total.detach(), 0.0)
                acc_comp += torch.where(ok > 0, comps.detach(), 0.0)
                acc_n += ok
                bad_streak = (bad_streak + 1.0) * found_inf
                bad_comp += (~torch.isfinite(comps[..., 0])).float()
                step += 1
                if bar is not None:
                    bar.update(1)

                check_every = min(cfg.train.log_every, cfg.train.max_nonfinite)
                if step % check_every == 0 or step == end_step:
                    streak = int(bad_streak.item())
                    if bad_comp.any():
                        names = [f"{sides[i]}/{mix.names[j]}" for i, j in bad_comp.nonzero().tolist()]
                        nonfinite_total += int(bad_comp.sum(1).max().item())
                        log.warning("non-finite loss from %s: %d step(s) skipped up to step %d",
                                    ", ".join(names), int(bad_comp.sum(1).max().item()), step)
                        bad_comp.zero_()
                    if streak >= cfg.train.max_nonfinite:
                        stopped = "nonfinite"
                        break

                if step % cfg.train.log_every == 0 or step == end_step:
                    now = time.perf_counter()
                    faces_per_sec = batch * len(sides) * (step - step_last) / max(now - t_last, 1e-9)
                    t_last, step_last = now, step
                    if dist.world > 1:  # the mean over all ranks (log steps only)
                        for t in (acc_total, acc_comp, acc_n):
                            torch.distributed.all_reduce(t)
                    n = max(acc_n.item(), 1.0)
                    values = (acc_comp / n).tolist()
                    metrics = {"loss/total": acc_total.item() / n}
                    for i, s in enumerate(sides):
                        for j, name in enumerate(mix.names):
                            metrics[f"loss/{s}/{name}"] = values[i][j][0]
                            metrics[f"loss_weighted/{s}/{name}"] = values[i][j][1]
                    metrics["lr"] = lr
                    metrics["perf/faces_per_sec"] = faces_per_sec * dist.world
                    acc_total.zero_()
                    acc_comp.zero_()
                    acc_n.zero_()
                    if writer is not None:
                        for tag, v in metrics.items():
                            writer.add_scalar(tag, v, step)
                    if bar is not None:
                        bar.set_postfix(loss=f"{metrics['loss/total']:.4f}", fps=f"{faces_per_sec:.0f}")
                    elif dist.main:
                        log.info("step %d/%d  loss %.5f  lr %.2e  %.1f faces/s", step, total_steps,
                                 metrics["loss/total"], lr, metrics["perf/faces_per_sec"])

                if dist.main and (step % cfg.train.eval_every == 0 or step == end_step):
                    val = evaluate(model, {s: data[s] for s in sides}, device, ssim_metric)
                    metrics.update(val)
                    if writer is not None:
                        for tag, v in val.items():
                            writer.add_scalar(tag, v, step)

                if dist.main and (step % cfg.train.preview_every == 0 or step == end_step):
                    grid = render_grid(model, preview_faces, sides, device)
                    save_png(run_dir / "previews" / f"step_{step:07d}.png", grid)
                    save_png(run_dir / "previews" / "latest.png", grid)
                    if writer is not None:
                        writer.add_image("preview", grid, step, dataformats="HWC")

                if step % cfg.train.save_every == 0 or step == end_step:
                    checkpoint(step, periodic=True)
    except KeyboardInterrupt:
        stopped = "interrupted"
        if dist.main:
            log.warning("interrupted at step %d: saving a checkpoint", step)
        if step > start_step:
            checkpoint(step, periodic=False)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.flush()
            writer.close()

    skipped = {}
    for s in sides:
        for reason, n in data[s].skipped_counts().items():
            skipped[f"{s}:{reason}"] = n
    if stopped == "nonfinite":
        raise NonFiniteStop(
            f"stopped at step {step}: {cfg.train.max_nonfinite} non-finite steps in a row (each skipped); "
            f"the last good checkpoint is {ckpt_dir / 'last.pt'}. Lower train.lr, add train.grad_clip, "
            "or check the loss named in the warnings"
        )
    return TrainResult(run_dir, start_step, step, stopped, metrics, skipped, nonfinite_total, faces_per_sec,
                       dist.main)


@torch.no_grad()
def evaluate(model: nn.Module, data: Mapping[str, Any], device: torch.device,
             ssim: nn.Module | None = None) -> dict[str, float]:
    """Validation PSNR and SSIM (``valid`` windows, as published) per side, on the held-out faces."""
    out: dict[str, float] = {}
    was = model.training
    model.eval()
    try:
        for s, d in data.items():
            faces = d.val_faces()
            if faces is None or faces.shape[0] == 0:
                continue
            p_sum, s_sum, n = 0.0, 0.0, 0
            for chunk in faces.split(32):
                x = chunk.to(device, torch.float32)
                y = model(x, s).float()
                p_sum += psnr(y, x).sum().item()
                if ssim is not None:
                    s_sum += (1.0 - ssim(y, x).flatten(1).mean(1)).sum().item()
                n += x.shape[0]
            out[f"val/{s}/psnr"] = p_sum / n
            if ssim is not None:
                out[f"val/{s}/ssim"] = s_sum / n
    finally:
        model.train(was)
    return out


def _ssim_metric(device: torch.device) -> nn.Module | None:
    try:
        return build_loss("ssim", padding="valid").to(device)
    except FaceswapLiteError:  # pragma: no cover - the built-in is always there
        return None


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

