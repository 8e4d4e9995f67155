"""The training loop: :func:`train` sets a run up (:mod:`.setup`) and runs a :class:`_Session` over its steps.

The session loops over :func:`~.step.train_step` with the periodic work in its short methods: log
every ``log_every`` steps (where values are read back to the host), validate every ``eval_every``,
preview every ``preview_every``, checkpoint every ``save_every`` and at the end. The skip streak is
read only when it could have reached ``max_nonfinite`` (every ``max_nonfinite`` steps on a healthy
run), so a streak is caught at the step it reaches the limit; a streak or a blown-up loss rolls the
run back (:mod:`.recovery`).

The rest of train/, one job each: :mod:`.setup` (the parts and every check before the first
write), :mod:`.step` (one optimiser step and the sums it keeps on the device), :mod:`.recovery`
(roll backs), :mod:`.resume` (what a checkpoint brings back), :mod:`.validate` and :mod:`.metrics`
(validation on the held-out faces), :mod:`.checkpoint` (the file format), :mod:`.preview` (the
grids), :mod:`.data` (each side's batches) and :mod:`.schedule` (the learning rate).

A model that learns a mask (``learns_mask``) runs ``forward_with_mask`` for every side inside
:class:`~.step.Sides` and the mix adds its ``mask`` term (``[mask] learn_weight``) per side. From the
step ``augment.warp_until`` resolves to (kept in the checkpoint) the model input is the augmented
target itself, not its warped copy.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import Config
from ..data.device_augment import augment_batch
from ..device import Interrupts, rng_state
from ..runfolder import RunFolder
from .checkpoint import link_or_copy, prune, save_checkpoint
from .preview import render_grid, save_png
from .recovery import Blowup, RollbackLimit, Snapshot, roll_back
from .schedule import lr_at
from .setup import AlreadyTrained, Run, setup
from .step import log_metrics, report_skips, train_step
from .validate import evaluate

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    start_step: int
    step: int
    stopped: str  # "done", "interrupted", "time budget", "already trained" (at train.steps: nothing done,
    # nothing written, the checkpoint's metrics); a stop after max_rollbacks raises RollbackLimit
    metrics: dict[str, float] = field(default_factory=dict)
    skipped_files: dict[str, int] = field(default_factory=dict)
    nonfinite_steps: int = 0
    faces_per_sec: float = 0.0
    is_main: bool = True  # rank 0 (the process that writes and reports)
    rollbacks: int = 0


def train(cfg: Config, faces: Mapping[str, str | Path], run_dir: str | Path, plugins_dirs: Sequence[str] = (),
          resume: bool | None = None, progress: bool | None = None, max_steps: int | None = None,
          max_seconds: float | None = None, until: int | None = None) -> TrainResult:
    """Train on the face sets ``faces`` (``{"a": folder}`` or ``{"a": ..., "b": ...}``) into ``run_dir``.

    resume: None = resume when ``run_dir`` holds a checkpoint; True = require one; False = refuse to
    overwrite an existing run. max_steps: stop after this many steps in this call (tests, benchmarks).
    max_seconds: stop (with a checkpoint, ``stopped = "time budget"``) at the first step boundary
    this many seconds after the call began, setup included (compare's ``--minutes``; one process:
    ranks of a DDP run would not agree on the step). until: stop at this step (``train --until``),
    with the step evaluated, previewed and saved as at the end.

    Rank 0 holds the run folder's lock for the whole call: a second training into it is a one-line
    :class:`~faceswap_lite.fsutil.FolderLockedError`. A resumed run already at ``train.steps``
    returns at once (``stopped = "already trained"``), having written nothing.
    """
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds
    folder = RunFolder(run_dir)
    with contextlib.ExitStack() as held:  # the run folder's lock (rank 0), released when the call ends
        try:
            run = setup(cfg, faces, folder, plugins_dirs, resume, max_steps, deadline, held, until=until)
        except AlreadyTrained as done:
            return TrainResult(folder.path, done.step, done.step, "already trained", done.metrics,
                               is_main=done.main)
        return _run_session(_Session(run, progress))


def _run_session(session: _Session) -> TrainResult:
    """Step to the end; a Ctrl-C (or SIGTERM) saves a checkpoint and stops."""
    try:
        with Interrupts(Interrupts.RAISE):  # a SIGTERM saves and stops like Ctrl-C
            stopped = session.run_loop()
    except KeyboardInterrupt:
        stopped = "interrupted"
        session.save_on_interrupt()
    finally:
        session.close()
    return session.result(stopped)


class _Session:
    """The mutable state of one :func:`train` call and the periodic work of its loop.

    Host syncs stay off the per-step path: ``loop.streak`` is read back only when a skip streak could
    have reached the limit or on a log step (:meth:`check_streak`), and on a save step (:meth:`maybe_save`).
    """

    def __init__(self, run: Run, progress: bool | None) -> None:
        self.run, self.loop = run, run.loop
        self.tc = tc = run.loop.cfg.train
        self.iters = self.batch_streams()
        self.unwarped = False  # whether the no-warp switch has been logged
        self.preview_faces = {s: run.data[s].preview_faces(tc.preview_faces) for s in self.loop.sides}
        self.metrics: dict[str, float] = {}
        self.nonfinite_total = 0
        self.good = Snapshot.take(self.loop)
        self.blowup = Blowup(tc.blowup_factor, tc.blowup_steps)
        self.bar = _progress_bar(progress, run)
        self.t_last, self.step_last = time.perf_counter(), run.start_step
        self.faces_per_sec = 0.0
        # The step last.pt holds (the start: the resumed one, or no step to save yet; None: unknown).
        self.saved_step: int | None = run.start_step
        # The earliest step a skip streak could reach the limit.
        self.next_check = run.start_step + tc.max_nonfinite

    def lr(self) -> float:
        return lr_at(self.loop.step, self.tc.lr, self.tc.warmup_steps, self.tc.drops) * self.loop.lr_scale

    def batch_streams(self) -> dict[str, Any]:
        """Every side's batches from the current step on (the stream a run from step 0 reaches there)."""
        return {s: self.run.data[s].batches(self.loop.step, self.run.augment_on) for s in self.loop.sides}

    def run_loop(self) -> str:
        """Step to the end of this call: ``"done"``, or ``"time budget"`` when the deadline came first."""
        run = self.run
        while self.loop.step < run.end_step:
            lr = self.lr()
            train_step(self.loop, self.next_batches(), lr)
            step = self.loop.step
            if self.bar is not None:
                self.bar.update(step - self.bar.n)

            # The last step of this call: the end, or the time budget spent (logged, evaluated,
            # previewed and saved like the end).
            last = step == run.end_step or (run.deadline is not None and time.perf_counter() >= run.deadline)
            log_now = step % self.tc.log_every == 0 or last
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
        run, cfg, warp_until = self.run, self.loop.cfg, self.run.warp_until
        batches = [next(self.iters[s]) for s in self.loop.sides]
        warp_on = warp_until is None or self.loop.step < warp_until
        if run.augment_on == "device":
            batches = [augment_batch(b, cfg.augment, cfg.mask, self.loop.device, warp=warp_on) for b in batches]
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
        streak = int(self.loop.streak.item())
        self.next_check = step + self.tc.max_nonfinite - streak
        if streak < self.tc.max_nonfinite:
            return False
        self.nonfinite_total += report_skips(self.loop)
        self.roll_back(f"{self.tc.max_nonfinite} non-finite steps in a row (each skipped)")
        self.next_check = self.loop.step + self.tc.max_nonfinite
        return True

    def log_step(self, step: int, lr: float) -> bool:
        """Report skips, read the metrics back and log them; roll back on a blown-up loss (True then)."""
        run, tc, loop = self.run, self.tc, self.loop
        self.nonfinite_total += report_skips(loop)
        now = time.perf_counter()
        self.faces_per_sec = (loop.cfg.data.batch_size * len(loop.sides) * (step - self.step_last)
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
        run, loop = self.run, self.loop
        if not run.dist.main:
            return
        if step % self.tc.eval_every == 0 or last:
            val = evaluate(loop.model, run.data, loop.device, loop.mix)
            if loop.ema is not None:  # validation logs both: val/... raw, val_ema/... the average
                val.update(evaluate(loop.ema, run.data, loop.device, loop.mix, prefix="val_ema"))
            self.metrics.update(val)
            self.write_scalars(val, step)
        if step % self.tc.preview_every == 0 or last:
            grid = render_grid(loop.model, self.preview_faces, loop.sides, loop.device)
            save_png(run.folder.preview(step), grid)
            save_png(run.folder.latest_preview, grid)
            if run.writer is not None:
                run.writer.add_image("preview", grid, step, dataformats="HWC")

    def maybe_save(self, step: int, last: bool) -> None:
        """Every ``save_every`` steps and at the last: checkpoint, and keep a good snapshot when healthy."""
        if not (step % self.tc.save_every == 0 or last):
            return
        healthy = not self.loop.streak.item() and self.blowup.since is None
        if healthy or last:
            self.checkpoint(periodic=True)
        if healthy:
            self.good = Snapshot.take(self.loop)

    def checkpoint(self, periodic: bool) -> None:
        """Save ``last.pt`` (and, when periodic, a kept step copy). A periodic save inside an unhealthy
        window (a skip streak, a blown-up loss) is skipped: last.pt stays the last good checkpoint,
        the one a stop after max_rollbacks names. The end-of-call and interrupt saves always write,
        unless last.pt holds this step already.

        A Ctrl-C or SIGTERM during the save waits for it (a KeyboardInterrupt inside torch's zip
        writer becomes torch's own error and leaves no file), then stops the run."""
        run, loop = self.run, self.loop
        if not run.dist.main or loop.step == self.saved_step:
            return
        state = {
            "step": loop.step, "model": loop.model.state_dict(), "optimizer": loop.optimizer.state_dict(),
            "scaler": loop.scaler.state_dict() if loop.scaler.is_enabled() else None,
            "config": loop.cfg.to_dict(), "model_spec": run.spec, "rng": rng_state(),
            "metrics": dict(self.metrics), "faces": {s: str(Path(run.faces[s]).resolve()) for s in loop.sides},
            "geometry": run.geometry, "lr_scale": loop.lr_scale, "rollbacks": loop.rollbacks,
            "warp_until": run.warp_until,
        }
        if loop.ema is not None:
            state["ema"] = loop.ema.state_dict()
        with Interrupts(Interrupts.HOLD):
            last = save_checkpoint(run.folder.last, state)
            self.saved_step = loop.step
            if periodic and self.tc.keep > 0:
                link_or_copy(last, run.folder.step_checkpoint(loop.step))
                prune(run.folder.checkpoints, self.tc.keep)

    def roll_back(self, why: str) -> None:
        run, loop, tc = self.run, self.loop, self.tc
        if loop.rollbacks >= tc.max_rollbacks:
            raise RollbackLimit(
                f"stopped at step {loop.step}: {why}, after {loop.rollbacks} roll back(s) (train.max_rollbacks); "
                f"the last good checkpoint is {run.folder.last}. Lower train.lr, add train.grad_clip, "
                "or check the loss named in the warnings")
        before_step, before_lr = loop.step, self.lr()
        roll_back(loop, self.good, tc.rollback_lr_factor)
        self.saved_step = None  # the step may be last.pt's again, but with a lower lr and one more roll back
        self.blowup.since = None
        self.iters = self.batch_streams()
        self.t_last, self.step_last = time.perf_counter(), loop.step
        if run.dist.main:
            log.warning("rolled back from step %d to step %d after %s: lr %.3g -> %.3g from now on "
                        "(roll back %d of at most %d)", before_step, loop.step, why, before_lr, self.lr(),
                        loop.rollbacks, tc.max_rollbacks)
        if run.writer is not None:
            run.writer.add_scalar("train/rollbacks", loop.rollbacks, before_step)

    def save_on_interrupt(self) -> None:
        """The save of a stopping run. A second Ctrl-C waits for it and is then dropped: the process
        is exiting anyway, and cutting the save would lose the steps since the last one."""
        with contextlib.suppress(KeyboardInterrupt), Interrupts(Interrupts.HOLD):
            if self.run.dist.main:
                done = self.loop.step == self.saved_step
                log.warning("interrupted at step %d: %s", self.loop.step,
                            "its checkpoint is saved" if done else "saving a checkpoint")
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
        skipped = {f"{s}:{reason}": n for s in self.loop.sides for reason, n in run.data[s].skipped_counts().items()}
        return TrainResult(run.folder.path, run.start_step, self.loop.step, stopped, self.metrics, skipped,
                           self.nonfinite_total, self.faces_per_sec, run.dist.main, self.loop.rollbacks)


def _progress_bar(progress: bool | None, run: Run) -> Any:
    show_bar = progress if progress is not None else (run.dist.main and sys.stderr.isatty())
    if not (show_bar and run.dist.main):
        return None
    from tqdm import tqdm

    return tqdm(total=run.end_step, initial=run.start_step, unit="step", dynamic_ncols=True)
