"""The learning-rate finder: a short exponential sweep of real training steps, then a suggestion.

``faceswap-lite train ... --lr-find`` runs ``train.lr_find_steps`` (200) optimiser steps of the run
itself (its data, augmentation, loss mix, masks and precision, through the trainer's own step)
while the rate grows exponentially from ``train.lr_find_start`` (1e-6) to ``train.lr_find_end``
(1e-2), and records the loss of each step. The curve is smoothed with a debiased exponential moving
average (β = 0.98) and the sweep stops at a non-finite loss or when the smoothed loss passes 4× its
best. Two suggestions are printed: the rate at the smoothed minimum divided by 10, and the rate of
the steepest descent (the most negative slope of the smoothed loss against log10 of the rate,
before the minimum, leaving out the first tenth of the sweep, where the average is still settling).
A loss that is bounded (ours are: the model's output is a sigmoid) levels off instead of exploding,
so the 4× stop mostly serves unbounded user losses; the minimum is found either way. ``--set train.lr=auto`` sweeps a new run first and trains with the first.

The sweep writes ``RUN/lr_find.csv`` and ``RUN/lr_find.png`` and nothing else: no checkpoint,
config or split. The model, optimiser and random state are put back after it, so a run trained
after the sweep is the run that was never swept. (torch-lr-finder drives a model, one criterion and
one DataLoader; our step trains every side at once with masks, the skip of non-finite steps on the
device and GradScaler, so the sweep reuses the trainer's own step instead.)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..config import Config
from ..device import rng_state, set_rng_state
from ..errors import FaceswapLiteError
from ..fsutil import write_atomic
from ..runfolder import RunFolder
from .recovery import Snapshot
from .setup import Run, setup
from .step import train_step

log = logging.getLogger(__name__)

BETA = 0.98  # the smoothing of the loss curve (fastai's and torch-lr-finder's default)
STOP_FACTOR = 4.0  # stop once the smoothed loss is this many times its best


class LRFindError(FaceswapLiteError):
    """A sweep that cannot run (a resumed run, an empty range, several processes)."""


@dataclass
class Sweep:
    """What a sweep measured: the rate, raw and smoothed loss of each step, why it stopped, the suggestions."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stopped: str  # "end", "non-finite loss" or "loss above 4x its best"
    at_minimum: float | None  # the smoothed minimum's rate / 10
    steepest: float | None

    @property
    def suggestion(self) -> float | None:
        return self.at_minimum if self.at_minimum is not None else self.steepest


def check_range(start: float, end: float, steps: int) -> None:
    if not (start > 0 and end > start and math.isfinite(end)):
        raise LRFindError(f"--lr-find sweeps from train.lr_find_start = {start:g} up to train.lr_find_end = "
                          f"{end:g}: both must be > 0 and the end above the start (e.g. 1e-6 and 1e-2)")
    if steps < 10:
        raise LRFindError(f"train.lr_find_steps = {steps}: a sweep needs at least 10 steps (200 is the default)")


def lr_find(cfg: Config, faces: Mapping[str, str | Path], run_dir: str | Path,
            plugins_dirs: Sequence[str] = ()) -> Sweep:
    """Sweep the learning rate on a new run folder; writes ``lr_find.csv`` and ``lr_find.png`` there."""
    tc = cfg.train
    check_range(tc.lr_find_start, tc.lr_find_end, tc.lr_find_steps)
    folder = RunFolder(run_dir)
    if folder.last.is_file() or folder.is_run():
        raise LRFindError(f"--lr-find sweeps a new run, but {folder.path} already holds one; give a new -o "
                          "folder (a sweep from trained weights would not say which rate to start with)")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise LRFindError("--lr-find runs in one process: run it without torchrun, then train with torchrun")
    with contextlib.ExitStack() as held:  # setup takes the run folder's lock
        run = setup(cfg, faces, folder, plugins_dirs, resume=False, max_steps=None, deadline=None, held=held,
                    write=False)
        sweep = _sweep(run, tc.lr_find_start, tc.lr_find_end, tc.lr_find_steps)
        _write(folder, sweep)
    return sweep


def _sweep(run: Run, start: float, end: float, steps: int) -> Sweep:
    from .trainer import _Session

    loop = run.loop
    before, rng = Snapshot.take(loop), rng_state()
    session = _Session(run, progress=False)
    lrs, losses, smoothed = [], [], []
    avg, best, stopped = 0.0, math.inf, "end"
    try:
        for i in range(steps):
            lr = start * (end / start) ** (i / (steps - 1))
            train_step(loop, session.next_batches(), lr)
            n = loop.acc_n.item()  # one read back per step: a sweep is short, not the training loop
            loss = loop.acc_total.item() / n if n else math.nan
            loop.reset_sums()
            lrs.append(lr)
            losses.append(loss)
            if not math.isfinite(loss):
                smoothed.append(math.nan)
                stopped = "non-finite loss"
                break
            avg = BETA * avg + (1 - BETA) * loss
            smoothed.append(avg / (1 - BETA ** (i + 1)))
            best = min(best, smoothed[-1])
            if smoothed[-1] > STOP_FACTOR * best:
                stopped = f"loss above {STOP_FACTOR:g}x its best"
                break
    finally:
        session.close()
        before.restore(loop)  # the weights, the optimiser's moments and the step counter as they were
        set_rng_state(rng)
    at_min, steep = _suggest(lrs, smoothed)
    return Sweep(lrs, losses, smoothed, stopped, at_min, steep)


def _suggest(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float | None]:
    """The smoothed minimum's rate / 10, and the rate of the steepest descent before the minimum."""
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if len(finite) < 3:
        return None, None
    lo = min(finite, key=lambda i: smoothed[i])
    at_min = lrs[lo] / 10 if lo > 0 else None
    skip = max(3, len(lrs) // 10)  # the first points carry the average's start-up noise
    if lo - skip < 2:
        return at_min, None
    x = np.log10(np.asarray(lrs[skip: lo + 1]))
    slope = np.gradient(np.asarray(smoothed[skip: lo + 1]), x)
    return at_min, float(lrs[skip + int(np.argmin(slope))])


def _write(folder: RunFolder, sweep: Sweep) -> None:
    rows = ["step,lr,loss,smoothed"] + [f"{i},{lr:.6g},{loss:.6g},{s:.6g}" for i, (lr, loss, s) in
                                         enumerate(zip(sweep.lrs, sweep.losses, sweep.smoothed))]
    text = ("\n".join(rows) + "\n").encode()
    folder.path.mkdir(parents=True, exist_ok=True)
    write_atomic(folder.lr_find_csv, lambda fh: fh.write(text))
    write_atomic(folder.lr_find_png, lambda fh: _plot(sweep, fh))


def _plot(sweep: Sweep, fh: BinaryIO) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(sweep.lrs, sweep.losses, color="0.75", lw=1, label="loss")
    ax.plot(sweep.lrs, sweep.smoothed, color="C0", lw=2, label="smoothed")
    for rate, name, colour in ((sweep.at_minimum, "minimum / 10", "C3"), (sweep.steepest, "steepest", "C2")):
        if rate is not None:
            ax.axvline(rate, color=colour, ls="--", lw=1, label=f"{name}: {rate:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (loss/total)")
    ax.set_title(f"LR sweep, {len(sweep.lrs)} steps ({sweep.stopped})")
    finite = [v for v in sweep.smoothed if math.isfinite(v)]
    if finite:
        ax.set_ylim(min(finite) * 0.9, min(max(finite), STOP_FACTOR * min(finite)) * 1.1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(fh, format="png")
    plt.close(fig)
