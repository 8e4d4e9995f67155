"""The set-up of a training call: build the parts and run every check that can fail, then write.

Nothing is written to the run folder until the output folder's writability, the device, the
plugins, the checkpoint to resume from (and its step against ``train.steps``), the model, the loss
mix (run once on a tiny batch of the model's size), the face sets and their split have all passed;
then rank 0 makes the folder and writes the config, the split and the first TensorBoard event file.

Rank 0 holds the run folder's lock (:meth:`~faceswap_lite.runfolder.RunFolder.lock`) for the whole
call, on the caller's exit stack: taken first thing when the folder has a lock file (an earlier or
a running writer left it), so a second training into it stops before any model is built, else just
before the first write (a folder without the file has no holder, and a check that fails then
leaves no new folder or file behind).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import Config
from ..data.device_augment import resolve_augment_on
from ..device import Dist, init_distributed, resolve_device, resolve_precision, seed_everything
from ..errors import FaceswapLiteError, first_line
from ..fsutil import check_output_folder
from ..losses import LossMix
from ..models import learns_mask
from ..registry import MODELS, load_plugins
from ..runfolder import RunFolder
from .checkpoint import clean_temporaries
from .data import make_side_data
from .resume import find_resume, model_spec, resume_state, warp_until_of_run
from .step import Loop, Sides, build_optimizer


@dataclass(frozen=True, eq=False)
class Run:
    """What one :func:`~.trainer.train` call is built from (by :func:`setup`), fixed for the call; the
    parts the steps change (the model, optimiser, counters) are ``loop``'s."""

    faces: Mapping[str, str | Path]
    dist: Dist
    folder: RunFolder
    loop: Loop
    data: dict[str, Any]
    geometry: dict[str, Any]
    spec: dict[str, Any]
    start_step: int
    warp_until: int | None
    augment_on: str  # "workers" or "device" (data.augment_on resolved for the device)
    writer: Any  # a SummaryWriter on rank 0, else None
    end_step: int
    deadline: float | None


class AlreadyTrained(Exception):
    """Not an error: the run is at ``train.steps`` already, so there is nothing to train (and nothing
    was written). ``metrics`` are its checkpoint's; ``main``: whether this is rank 0."""

    def __init__(self, step: int, metrics: Mapping[str, float], main: bool) -> None:
        super().__init__(f"already at step {step}")
        self.step, self.metrics, self.main = step, dict(metrics), main


def setup(cfg: Config, faces: Mapping[str, str | Path], folder: RunFolder, plugins_dirs: Sequence[str],
          resume: bool | None, max_steps: int | None, deadline: float | None, held: ExitStack,
          write: bool = True, until: int | None = None) -> Run:
    """Build the parts and run every check that can fail, then (rank 0 only) write to the run folder.

    Rank 0's lock on the run folder goes on ``held``; ``write`` False writes nothing of the run
    (the learning-rate sweep). Raises :class:`AlreadyTrained` when a resumed
    run is at ``train.steps``.
    """
    sides = list(faces)
    check_output_folder(folder.path, FaceswapLiteError, "-o")
    dist = init_distributed(cfg.train.device)
    locked = _lock(folder, dist, held, only_if_there=True)  # fail fast when another process trains there
    device = _run_device(cfg, dist)
    precision = resolve_precision(cfg.train.precision, device)
    load_plugins(list(cfg.plugins.dirs) + list(plugins_dirs))
    found = find_resume(folder, resume)
    if found is not None:
        _check_steps(folder, found[1], cfg, dist.main)
    if until is not None and found is not None and until <= int(found[1].get("step", 0)):
        raise FaceswapLiteError(f"--until {until}: run {folder.path} is already at step {found[1].get('step')}; "
                                "give a later step")
    model, mix, resolution = _build_model_and_mix(cfg, sides, device)

    saved_split = folder.read_split() if found is not None else {}
    data = {s: make_side_data(Path(faces[s]), cfg, resolution, side=s, seed=cfg.train.seed, rank=dist.rank,
                              world=dist.world, device=device, previous=saved_split.get(s))
            for s in sides}

    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg, model, device)
    scaler = torch.amp.GradScaler("cuda", enabled=(precision == "fp16"))
    spec = model_spec(cfg, sides)
    start_step, lr_scale, rollbacks = 0, 1.0, 0
    if found is not None:
        start_step, lr_scale, rollbacks = resume_state(found, spec, cfg, model, optimizer, scaler, dist.main)
    loop = Loop(model, _wrap_for_training(model, sides, cfg, dist, device), mix, optimizer, scaler, cfg, sides,
                device, {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision), dist.world,
                step=start_step, lr_scale=lr_scale, rollbacks=rollbacks,
                ema=_ema_copy(model, cfg, found[1] if found is not None else None))
    augment_on = resolve_augment_on(cfg.data.augment_on, device)
    # Everything above can fail and has written nothing; the run folder is written from here on.
    if not locked:
        _lock(folder, dist, held, only_if_there=False)
    # (The learning-rate sweep writes none of the run's files: ``write`` False.)
    writer = _write_run_folder(cfg, folder, data, start_step) if dist.main and write else None
    return Run(
        faces=faces, dist=dist, folder=folder, loop=loop, data=data,
        geometry={s: data[s].sets.store.geometry for s in sides}, spec=spec, start_step=start_step,
        warp_until=warp_until_of_run(cfg, found[1] if found is not None else None), augment_on=augment_on,
        writer=writer, deadline=deadline,
        end_step=min(cfg.train.steps, start_step + (max_steps if max_steps is not None else cfg.train.steps),
                     until if until is not None else cfg.train.steps),
    )


def _lock(folder: RunFolder, dist: Dist, held: ExitStack, only_if_there: bool) -> bool:
    """Rank 0 takes the run folder's lock onto ``held`` (with ``only_if_there``, only when its lock
    file exists, so that taking it writes nothing). Returns whether it is held now; the other ranks
    never hold it (rank 0 alone writes)."""
    if not dist.main or (only_if_there and not folder.lock_file.is_file()):
        return False
    held.enter_context(folder.lock())
    return True


def _check_steps(folder: RunFolder, state: Mapping[str, Any], cfg: Config, main: bool) -> None:
    """A resumed run must be below ``train.steps``: past it is a one-line error, at it nothing to do."""
    step, steps = int(state.get("step", 0)), cfg.train.steps
    if step > steps:
        raise FaceswapLiteError(f"run {folder.path} is at step {step}, past train.steps = {steps}: raise "
                                "train.steps to train longer")
    if step == steps:
        raise AlreadyTrained(step, state.get("metrics") or {}, main)


def _ema_copy(model: nn.Module, cfg: Config, state: Mapping[str, Any] | None) -> nn.Module | None:
    """The moving average of the weights (``train.ema`` > 0): the checkpoint's when it has one, else
    a copy of the weights as they are now (a new run, or the average turned on at a resume)."""
    if cfg.train.ema <= 0:
        return None
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    if state is not None and state.get("ema") is not None:
        ema.load_state_dict(state["ema"])
    return ema


def _run_device(cfg: Config, dist: Dist) -> torch.device:
    device = resolve_device(cfg.train.device if dist.world == 1 or cfg.train.device != "auto"
                            else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
    return device


def _build_model_and_mix(cfg: Config, sides: Sequence[str],
                         device: torch.device) -> tuple[nn.Module, LossMix, int]:
    """The seeded model (still on the host), its loss mix (checked on a tiny batch) and its resolution."""
    seed_everything(cfg.train.seed)
    model = MODELS.build_table(cfg.model, sides=tuple(sides))
    resolution = int(getattr(model, "resolution", cfg.model.get("resolution", 64)))
    if learns_mask(model) and not cfg.mask.face:
        raise FaceswapLiteError("the model learns a mask (model.learn_mask) but mask.face = false: the mask is "
                                "trained on the landmark face mask; set mask.face = true or model.learn_mask = false")
    mix = LossMix(cfg.loss, eye_weight=cfg.mask.eye_weight, mouth_weight=cfg.mask.mouth_weight,
                  learn_weight=cfg.mask.learn_weight if learns_mask(model) else None).to(device)
    _check_losses_fit(mix, resolution, device)
    return model, mix, resolution


def _check_losses_fit(mix: LossMix, resolution: int, device: torch.device) -> None:
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
                raise FaceswapLiteError(
                    f"loss {name!r} cannot run on the model's {resolution}×{resolution} faces ({first_line(exc)}); "
                    f"give it settings for smaller images (fewer scales, a smaller window) or train a larger "
                    f"model.resolution") from None
        masks = {} if mix.learn_weight is None else {"pred_mask": ones, "target_mask": ones}
        mix(x, y, ones, ones, ones, **masks)


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


def _write_run_folder(cfg: Config, folder: RunFolder, data: Mapping[str, Any], start_step: int) -> Any:
    """Rank 0's first writes, once every check has passed: the folders, config and split.

    Returns the TensorBoard writer.
    """
    folder.create()
    clean_temporaries(folder.checkpoints)
    folder.write_config(cfg)
    folder.write_split({s: d.sets.split for s, d in data.items() if d.sets.split is not None})
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder.tb), purge_step=start_step + 1 if start_step else None)
