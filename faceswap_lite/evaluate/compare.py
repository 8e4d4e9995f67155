"""``faceswap-lite compare``: one run per loss mix, everything else equal, then one panel for all.

Every mix trains into ``DIR/NAME`` from the same base config (``-c`` and ``--set``) with only its
``[[loss]]`` tables replaced, so the model, seed, data order, held-out split, augmentation and
budget (``train.steps``, or ``--minutes`` of wall time per mix) are the same. Then every finished
mix is evaluated with the same panel (:mod:`.panel`) on the same held-out faces, with the same
identity centres, and :mod:`.report` writes ``report.md``, ``report.json``, ``grid.png`` and
``curves.png``; the runs' TensorBoard logs sit side by side (``faceswap-lite monitor DIR``).

``DIR/compare.json`` records the mixes, the base config, the faces and each mix's state; it is
rewritten atomically after every mix, so an interrupted compare resumes the unfinished mixes (each
from its last checkpoint) when the same command is run again. A mix that fails (a loss that cannot
be built, a non-finite stop) is recorded with its one-line error and the others go on; it is tried
again on the next run of the command.

``--jobs N`` trains N mixes at a time, each in its own process: on a machine with several GPUs mix
k goes to GPU k mod (number of GPUs); on a CPU the processes share the cores (which rarely helps).

``--seeds 0,1,2`` trains every mix once per seed into ``DIR/NAME/seed-S``, the runs of one mix
differing in ``train.seed`` alone (the model's initial weights, the data order and the augmentation;
the held-out split hashes file names, not the seed, so every run holds out the same faces). The
report then gives each metric's mean and range over the seeds. Without ``--seeds`` each mix is one
run with the base config's own ``train.seed``, in ``DIR/NAME``, as before. Internally a "run" is a
(mix, seed) pair, named by its folder relative to DIR (``NAME`` or ``NAME/seed-S``), and the manifest
keeps each run's state under its mix (``mixes.NAME`` itself, or ``mixes.NAME.seeds.S``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, from_dict, load_config
from ..errors import ConfigError, FaceswapLiteError
from ..fsutil import FolderLock, check_output_folder, write_atomic
from .checks import CompareError, check_split, parse_seeds
from .mixes import RESERVED, Mix, parse_mixes

log = logging.getLogger(__name__)

MANIFEST = "compare.json"
FORMAT = 1
PENDING, DONE, FAILED = "pending", "done", "failed"


class NothingTrained(CompareError):
    """Every run of the compare failed: there is nothing to compare (exit 1; the report lists the errors)."""

    exit_code = 1


@dataclass
class MixState:
    status: str = PENDING
    error: str | None = None
    step: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Run:
    """One training run of a compare: a mix, with one of ``--seeds`` (None: the base config's seed)."""

    mix: Mix
    seed: int | None = None

    @property
    def key(self) -> str:
        """The run's folder relative to DIR, also its name in messages and in ``Plan.states``."""
        return self.mix.name if self.seed is None else f"{self.mix.name}/seed-{self.seed}"


@dataclass
class Plan:
    """A checked compare: nothing is written until :func:`run_compare`."""

    out: Path
    faces: dict[str, str]
    base: Config
    mixes: list[Mix]
    minutes: float | None
    jobs: int
    plugins_dirs: tuple[str, ...]
    command: str
    seeds: tuple[int, ...] | None = None  # --seeds; None: one run per mix with the base's train.seed
    states: dict[str, MixState] = field(default_factory=dict)  # by Run.key
    known: dict[str, Any] = field(default_factory=dict)  # mixes of earlier runs of this compare
    known_seeds: dict[str, dict[str, Any]] = field(default_factory=dict)  # per mix, seeds no longer asked for

    def runs(self, mix: Mix | None = None) -> list[Run]:
        """Every run (of ``mix``, else of every mix), mix by mix in the plan's order, then seed by seed."""
        mixes = self.mixes if mix is None else [mix]
        return [Run(m, s) for m in mixes for s in (self.seeds or (None,))]

    def state(self, run: Run) -> MixState:
        return self.states.get(run.key, MixState())

    def config_for(self, run: Run) -> Config:
        cfg = {**self.base.to_dict(), "loss": [dict(d) for d in run.mix.losses]}
        if run.seed is not None:
            cfg["train"] = {**cfg["train"], "seed": run.seed}
        return from_dict(cfg)

    def budget(self) -> str:
        per = "per mix" if self.seeds is None else "per mix and seed"
        if self.minutes is not None:
            return f"{self.minutes:g} min of wall time {per} (at most train.steps = {self.base.train.steps})"
        return f"train.steps = {self.base.train.steps} {per}"


# ------------------------------------------------------------------------------------------------
# Planning: every check before anything is trained or written


def plan_compare(faces: Mapping[str, str | None], out: str | Path, mix_items: Sequence[str],
                 config: str | None = None, overrides: Sequence[str] = (), plugins_dirs: Sequence[str] = (),
                 minutes: float | None = None, jobs: int = 1, command: str = "",
                 seeds: str | None = None) -> Plan:
    from ..registry import load_plugins

    if any(o.strip().startswith("loss") for o in overrides):
        raise CompareError("--set loss...: compare takes the losses from each --mix; set the others with --set")
    seed_list = None if seeds is None else parse_seeds(seeds)
    if seed_list is not None and any(o.replace(" ", "").startswith("train.seed=") for o in overrides):
        raise CompareError("--set train.seed: with --seeds every run's train.seed comes from --seeds")
    if minutes is not None and not minutes > 0:
        raise CompareError(f"--minutes must be > 0, got {minutes}")
    if jobs < 1:
        raise CompareError(f"--jobs must be >= 1, got {jobs}")
    check_output_folder(Path(out), CompareError, "-o")
    if (Path(out) / FolderLock.NAME).is_file():  # without the file no process holds the lock
        with folder_lock(out):  # another compare (or a training) writing DIR: stop before any check
            pass
    base = load_config(config, overrides)
    dirs = tuple(base.plugins.dirs) + tuple(plugins_dirs)
    load_plugins(list(dirs))
    mixes = parse_mixes(list(mix_items))
    sides = {s: str(Path(f).resolve()) for s, f in faces.items() if f is not None}
    for side, folder in sides.items():
        check_split(folder, side, base)
    plan = Plan(Path(out), sides, base, mixes, minutes, jobs, dirs, command, seed_list)
    _check_mix_configs(plan)
    _check_folder(plan)
    return plan


def folder_lock(out: str | Path) -> FolderLock:
    """The lock a compare holds on DIR while it runs (each mix's training locks its own DIR/NAME)."""
    return FolderLock(out, "compare folder")


def _check_mix_configs(plan: Plan) -> None:
    """Every mix's config passes the config's own checks (all weights 0, say) before anything trains."""
    for m in plan.mixes:
        try:
            plan.config_for(Run(m))
        except ConfigError as exc:
            raise CompareError(f"--mix {m.name}: {exc.message}") from None


def _state_json(st: MixState) -> dict[str, Any]:
    return {"status": st.status, "error": st.error, "step": st.step, "seconds": round(st.seconds, 3)}


def _state_of(entry: Mapping[str, Any]) -> MixState:
    return MixState(str(entry.get("status", PENDING)), entry.get("error"), int(entry.get("step", 0)),
                    float(entry.get("seconds", 0.0)))


def _manifest(plan: Plan) -> dict[str, Any]:
    base = plan.base.to_dict()
    base.pop("loss")
    if plan.seeds is not None:  # each run's seed is its own (--seeds): the rest must stay equal
        base["train"].pop("seed")
    mixes = dict(plan.known)
    for m in plan.mixes:
        entry: dict[str, Any] = {"spec": m.spec, "loss": [dict(d) for d in m.losses]}
        if plan.seeds is None:
            entry.update(_state_json(plan.state(Run(m))))
        else:
            entry["seeds"] = {**plan.known_seeds.get(m.name, {}),
                              **{str(r.seed): _state_json(plan.state(r)) for r in plan.runs(m)}}
        mixes[m.name] = entry
    extra = {} if plan.seeds is None else {"seeds": list(plan.seeds)}  # the layout without --seeds is unchanged
    return {"format": FORMAT, "faces": plan.faces, "base": base, "minutes": plan.minutes, **extra,
            "mixes": mixes, "command": plan.command}


def _check_folder(plan: Plan) -> None:
    """DIR is new, empty, or this same compare (then its mixes' states are taken over)."""
    out = plan.out
    if out.exists() and not out.is_dir():
        raise CompareError(f"-o {out} is a file; give a folder for the runs and the report")
    entries = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []
    path = out / MANIFEST
    if not path.is_file():
        if entries:
            raise CompareError(f"-o {out} already holds {', '.join(entries[:3])}{' ...' if len(entries) > 3 else ''} "
                               f"and no {MANIFEST}: it is not a compare folder; choose an empty or new folder")
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        old_mixes = dict(old["mixes"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CompareError(f"{path} is damaged ({type(exc).__name__}); choose a new -o folder") from None
    if ("seeds" in old) != (plan.seeds is not None):
        had = "with --seeds" if "seeds" in old else "without --seeds"
        raise CompareError(f"{out} is a compare {had}: run it the same way to resume, or choose a new -o folder")
    new = _manifest(plan)
    for key, what in (("faces", "face sets"), ("base", "base config (-c / --set)"), ("minutes", "--minutes")):
        if old.get(key) != new[key]:
            raise CompareError(f"{out} is a compare with other {what}{_first_difference(old.get(key), new[key])}; "
                               "run it with the same options to resume, or choose a new -o folder")
    for m in plan.mixes:
        prev = old_mixes.get(m.name)
        if prev is None:
            continue
        if prev.get("loss") != new["mixes"][m.name]["loss"]:
            raise CompareError(f"{out / m.name} was trained with another mix ({prev.get('spec')!r}, now "
                               f"{m.spec!r}); give this mix another name or choose a new -o folder")
        if plan.seeds is None:
            plan.states[m.name] = _state_of(prev)
            continue
        prev_seeds = dict(prev.get("seeds", {}))
        for r in plan.runs(m):
            if str(r.seed) in prev_seeds:
                plan.states[r.key] = _state_of(prev_seeds[str(r.seed)])
        # seeds of an earlier command stay recorded (their folders are kept), as other mixes do
        plan.known_seeds[m.name] = {s: v for s, v in prev_seeds.items() if s not in {str(x) for x in plan.seeds}}
    plan.known = {k: v for k, v in old_mixes.items() if k not in {m.name for m in plan.mixes}}
    allowed = set(RESERVED) | set(old_mixes) | {m.name for m in plan.mixes}
    stray = [e for e in entries if e not in allowed]
    if stray:
        raise CompareError(f"{out} holds {stray[0]!r}, which compare did not write; move it away or choose "
                           "a new -o folder")
    fresh = [m.name for m in plan.mixes if m.name not in old_mixes and (out / m.name).exists()]
    if fresh:
        raise CompareError(f"{out / fresh[0]} exists but is not one of this compare's mixes; move it away or "
                           "choose a new -o folder")


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    """`` (train.lr: 0.001 before, 0.0002 now)`` for the first key that differs."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
        return ""
    return f" ({where or 'value'}: {a!r} before, {b!r} now)"


def save_manifest(plan: Plan) -> None:
    plan.out.mkdir(parents=True, exist_ok=True)
    text = (json.dumps(_manifest(plan), indent=1) + "\n").encode()
    write_atomic(plan.out / MANIFEST, lambda fh: fh.write(text), sync_dir=True)


# ------------------------------------------------------------------------------------------------
# Training the mixes


@dataclass
class MixOutcome:
    name: str
    state: MixState
    interrupted: bool = False  # the user's Ctrl-C (not the budget): the compare stops


def train_mix(cfg_dict: dict[str, Any], faces: dict[str, str], run_dir: str, plugins_dirs: tuple[str, ...],
              name: str, seconds_left: float | None, before: MixState, progress: bool | None = None,
              threads: int | None = None) -> MixOutcome:
    """Train one mix to its budget (resuming its run folder); never raises for a failing mix."""
    import torch

    from ..train.trainer import train

    if threads:
        torch.set_num_threads(threads)
    state = MixState(PENDING, None, before.step, before.seconds)
    start = time.perf_counter()
    try:
        cfg = from_dict(cfg_dict)
        result = train(cfg, faces, run_dir, plugins_dirs=plugins_dirs, progress=progress,
                       max_seconds=seconds_left)
        state.step = result.step
        if result.stopped == "interrupted":
            state.seconds += time.perf_counter() - start
            return MixOutcome(name, state, interrupted=True)
        state.status = DONE
    except Exception as exc:  # a failing mix is reported; the others go on
        log.debug("mix %s failed", name, exc_info=True)
        state.status = FAILED
        state.error = exc.message if isinstance(exc, FaceswapLiteError) else f"{type(exc).__name__}: {exc}"
        state.error = " ".join(str(state.error).split())[:400]
    state.seconds += time.perf_counter() - start
    return MixOutcome(name, state)


def _seconds_left(plan: Plan, st: MixState) -> float | None:
    return None if plan.minutes is None else plan.minutes * 60.0 - st.seconds


def unfinished(plan: Plan) -> list[Run]:
    """The runs still to train (not done yet), in the plan's order."""
    return [r for r in plan.runs() if plan.state(r).status != DONE]


def run_compare(plan: Plan, progress: bool | None = None,
                on_mix: Callable[[str, MixState], None] | None = None) -> dict[str, Any]:
    """Train the unfinished mixes, evaluate all finished ones, write the report. Returns report.json's data.

    Holds DIR's lock throughout. Raises KeyboardInterrupt (after saving the state) when the user
    interrupts training, and :class:`NothingTrained` (after writing the report) when every run failed.
    """
    from .report import write_reports

    with folder_lock(plan.out):
        save_manifest(plan)
        todo = unfinished(plan)
        if plan.jobs > 1 and len(todo) > 1:
            _train_parallel(plan, todo, on_mix)
        else:
            for run in todo:
                _record(plan, _train_one(plan, run, progress), on_mix)
        report = write_reports(plan)
    _check_any_done(plan)
    return report


def _check_any_done(plan: Plan) -> None:
    """Raise :class:`NothingTrained` when no run finished, naming each run's error."""
    runs = plan.runs()
    if any(plan.state(r).status == DONE for r in runs):
        return
    causes = "; ".join(f"{r.key}: {plan.state(r).error or plan.state(r).status}" for r in runs)
    raise NothingTrained(f"every mix failed, nothing to compare ({causes}); fix what is named and run the same "
                         f"command again (it retries them; the errors are also in {plan.out / 'report.md'})")


def _train_one(plan: Plan, run: Run, progress: bool | None, device: str | None = None,
               threads: int | None = None) -> MixOutcome:
    cfg = plan.config_for(run).to_dict()
    if device is not None:
        cfg["train"]["device"] = device
    before = plan.state(run)
    return train_mix(cfg, plan.faces, str(plan.out / run.key), plan.plugins_dirs, run.key,
                     _seconds_left(plan, before), before, progress, threads)


def _record(plan: Plan, outcome: MixOutcome, on_mix: Callable[[str, MixState], None] | None) -> None:
    plan.states[outcome.name] = outcome.state
    save_manifest(plan)
    if outcome.interrupted:
        raise KeyboardInterrupt
    if on_mix is not None:
        on_mix(outcome.name, outcome.state)


def _train_parallel(plan: Plan, todo: list[Run], on_mix: Callable[[str, MixState], None] | None) -> None:
    """``--jobs``: each run in its own spawned process; run k on GPU k mod count when there are GPUs."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch

    gpus = torch.cuda.device_count() if plan.base.train.device in ("auto", "cuda") else 0
    threads = None if gpus else max(1, (os.cpu_count() or 1) // plan.jobs)
    ctx = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    with ProcessPoolExecutor(max_workers=plan.jobs, mp_context=ctx) as pool:
        futures = [pool.submit(_train_one, plan, m, False, f"cuda:{k % gpus}" if gpus else None, threads)
                   for k, m in enumerate(todo)]
        try:
            for fut in as_completed(futures):
                _record(plan, fut.result(), on_mix)
        except KeyboardInterrupt:
            for f in futures:
                f.cancel()
            with contextlib.suppress(Exception):
                pool.shutdown(wait=True, cancel_futures=True)
            raise
