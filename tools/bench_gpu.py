"""GPU training benchmark in one command: faces/s, data wait per augment_on, peak memory, TFLOP/s.

    python tools/bench_gpu.py                              # the four recipes on the CUDA GPU (< 10 min)
    python tools/bench_gpu.py --models original-64,sae-256 --steps 60 --out docs/benchmarks.md
    python tools/bench_gpu.py --device cpu --tiny --compile-backend eager   # smoke run (the test's)

For each recipe (original-64, face128, sae-128, sae-256; a recipe whose model plugin is not
installed is skipped with a note) the trainer's own step, ``faceswap_lite.train.step.train_step``
(both sides forward under bf16 autocast, a learned mask included, the recipe's loss mix with the
landmark masks, backward, the skip flag, fused Adam) is timed:

* **in memory** (one batch per side kept on the device): faces/s eager and with ``torch.compile``,
  the compile time, and ``torch.cuda.max_memory_allocated`` of each;
* **FLOPs** of one eager step from ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and
  convolutions, forward and backward), so achieved TFLOP/s = FLOPs × steps/s, against the GPU's
  dense bf16 peak (:data:`PEAKS` by name, or ``--peak-tflops``);
* **real loader** with each ``data.augment_on`` (eager, the default ``train.compile = false``): one
  DataLoader per side over a synthetic face set written as real PNGs, ``data.workers`` workers
  each; data wait = time blocked in ``next()`` over the whole step time. With ``device`` the workers
  hand over cached uint8 faces and the augmentation runs in the step (:mod:`faceswap_lite.data.device_augment`).

Timing syncs the device only around each timed block, never per step (as the trainer). faces/s =
batch × 2 sides × steps / s. Prints one Markdown table; ``--json`` writes the rows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceswap_lite.config import Config, load_config  # noqa: E402
from faceswap_lite.data import load_face_set, make_loader  # noqa: E402
from faceswap_lite.data.device_augment import RawFaceDataset, augment_batch  # noqa: E402
from faceswap_lite.losses import LossMix  # noqa: E402
from faceswap_lite.models import learns_mask  # noqa: E402
from faceswap_lite.registry import MODELS, load_plugins  # noqa: E402
from faceswap_lite.train.step import Loop, Sides, build_optimizer, train_step  # noqa: E402
from tools.machine import sync  # noqa: E402
from tools.synthetic_faces import make_face_set  # noqa: E402

RECIPES = {"original-64": "original-64", "face128": "face-128", "sae-128": "sae-128", "sae-256": "sae-256"}
# --tiny: narrow models so every recipe runs on a CPU in seconds (the resolution stays the recipe's).
TINY = {"original": {"width": 0.0625, "latent": 32}, "face128": {"width": 0.0625, "latent": 32},
        "sae": {"ae_dims": 16, "e_dims": 4, "d_dims": 4, "d_mask_dims": 2}}
# Dense bf16 tensor-core peaks in TFLOP/s (NVIDIA datasheets; SXM parts), first match of the name wins.
PEAKS = (("H100 PCIe", 756.0), ("GH200", 989.0), ("H200", 989.0), ("H100", 989.0), ("A100", 312.0),
         ("L40S", 362.0), ("L4", 121.0))
SIDES = ("a", "b")


def bf16_peak(device_name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, tflops in PEAKS:
        if key.lower() in device_name.lower():
            return tflops
    return None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


class Step:
    """The trainer's own step (:func:`faceswap_lite.train.step.train_step`) on the batches of both sides:
    its :class:`Sides` forward (a learned mask included), loss mix, optimiser and skip flag."""

    def __init__(self, model: torch.nn.Module, cfg: Config, device: torch.device, amp: torch.dtype | None) -> None:
        learn = cfg.mask.learn_weight if learns_mask(model) else None
        mix = LossMix(cfg.loss, eye_weight=cfg.mask.eye_weight, mouth_weight=cfg.mask.mouth_weight,
                      learn_weight=learn).to(device)
        scaler = torch.amp.GradScaler("cuda", enabled=False)  # bf16/fp32: no loss scaling, as the trainer
        self.lr = cfg.train.lr
        self.loop = Loop(model, Sides(model, SIDES), mix, build_optimizer(cfg, model, device), scaler, cfg,
                         list(SIDES), device, amp, world=1)

    def compile(self, backend: str) -> None:
        self.loop.train_model = torch.compile(self.loop.train_model, backend=backend)

    def __call__(self, batches: list[dict[str, torch.Tensor]]) -> None:
        train_step(self.loop, batches, self.lr)


def timed(step: Callable[[list[dict[str, torch.Tensor]]], None], feed: Callable[[], list[dict[str, torch.Tensor]]],
          steps: int, device: torch.device) -> tuple[float, float]:
    """(seconds for ``steps`` steps, seconds of it blocked in ``feed``), one sync at each end."""
    sync(device)
    wait = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        batches = feed()
        wait += time.perf_counter() - t0
        step(batches)
    sync(device)
    return time.perf_counter() - start, wait


def loader_feed(sets: dict[str, Any], cfg: Config, mode: str, device: torch.device,
                workers: int) -> tuple[Callable[[], list[dict[str, torch.Tensor]]], list[Iterator]]:
    """A feed drawing one batch per side from real DataLoaders built for ``data.augment_on = mode``."""
    its = []
    for s in SIDES:
        ds = sets[s].train if mode == "workers" else RawFaceDataset.of(sets[s].train)
        its.append(iter(make_loader(ds, cfg.data.batch_size, workers=workers, seed=0, train=True,
                                    pin_memory=device.type == "cuda")))
    return (lambda: [next(it) for it in its]), its


def flops_per_step(step: Step, batches: list[dict[str, torch.Tensor]]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step(batches)
    return counter.get_total_flops()


def bench_recipe(label: str, args: argparse.Namespace, device: torch.device, workdir: Path) -> dict[str, Any]:
    overrides = [f"data.batch_size={args.batch}"] if args.batch else []
    cfg = load_config(RECIPES[label], overrides)
    name = cfg.model["name"]
    if name not in MODELS:
        return {"model": label, "note": f"skipped: model plugin {name!r} is not installed"}
    table = dict(cfg.model)
    if args.tiny:
        table.update(TINY.get(name, {}))
    torch.manual_seed(0)
    model = MODELS.build_table(table, sides=SIDES).to(device).to(memory_format=torch.channels_last)
    res = int(model.resolution)
    faces = workdir / f"faces{res}"
    if not faces.is_dir():
        make_face_set(faces, args.faces, size=res, seed=0)
    sets = {s: load_face_set(faces, res, cfg.data, cfg.augment, cfg.mask, seed=0, side=s) for s in SIDES}
    row: dict[str, Any] = {"model": label, "px": res, "batch": cfg.data.batch_size,
                           "params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    step = Step(model, cfg, device, torch.bfloat16 if args.precision == "bf16" else None)
    workers = cfg.data.workers if args.workers is None else args.workers
    batch_fps = cfg.data.batch_size * len(SIDES)

    # Real loader, each augment_on (eager, the default). One fixed batch per side is kept for "in memory".
    fixed = None
    for mode in ("workers", "device"):
        feed, its = loader_feed(sets, cfg, mode, device, workers)
        _timed_loader(step, feed, mode, cfg, device, args.warmup)
        if fixed is None:
            fixed = [{k: v.to(device) for k, v in b.items()} for b in feed()]
        seconds, wait = _timed_loader(step, feed, mode, cfg, device, args.steps)
        row[f"{mode}_fps"] = batch_fps * args.steps / seconds
        row[f"{mode}_wait_pct"] = 100.0 * wait / seconds
        del its, feed
    assert fixed is not None

    def memory() -> list[dict[str, torch.Tensor]]:
        return fixed

    row["gflop_step"] = flops_per_step(step, fixed) / 1e9
    timed(step, memory, args.warmup, device)
    reset_peak(device)
    seconds, _ = timed(step, memory, args.steps, device)
    row["eager_fps"] = batch_fps * args.steps / seconds
    row["eager_mib"] = peak_mib(device)
    if args.compile_backend != "none":
        try:
            start = time.perf_counter()
            step.compile(args.compile_backend)
            timed(step, memory, max(args.warmup, 2), device)  # compiles (forward and backward) here
            row["compile_s"] = time.perf_counter() - start
            reset_peak(device)
            seconds, _ = timed(step, memory, args.steps, device)
            row["compiled_fps"] = batch_fps * args.steps / seconds
            row["compiled_mib"] = peak_mib(device)
        except Exception as exc:  # noqa: BLE001 - a compiler failure is a result to report, not a crash
            row["note"] = f"compile failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    best = max(row.get("compiled_fps", 0.0), row["eager_fps"])
    row["tflops"] = row["gflop_step"] * best / batch_fps / 1e3
    del step, model, sets
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def _timed_loader(step: Step, feed: Callable[[], list[dict[str, torch.Tensor]]], mode: str, cfg: Config,
                  device: torch.device, steps: int) -> tuple[float, float]:
    """:func:`timed` for a loader feed; with ``device`` the augmentation is queued work of the step,
    not data wait (the wait is the blocking ``next()`` alone)."""
    if mode == "workers":
        return timed(step, feed, steps, device)
    return timed(lambda raw: step([augment_batch(b, cfg.augment, cfg.mask, device) for b in raw]), feed, steps, device)


def _fmt(v: Any, spec: str = ".0f") -> str:
    return "n/a" if v is None else format(v, spec)


def table(rows: list[dict[str, Any]], peak: float | None) -> list[str]:
    lines = ["| model | px | batch | params M | faces/s eager | faces/s compiled | compile s | peak MiB eager / "
             "compiled | GFLOP/step | TFLOP/s (best) | of bf16 peak | data wait, workers | faces/s, workers | "
             "data wait, device | faces/s, device |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for r in rows:
        if "px" not in r:
            notes.append(f"- {r['model']}: {r['note']}")
            continue
        share = f"{100 * r['tflops'] / peak:.1f} %" if peak else "n/a"
        lines.append(
            f"| {r['model']} | {r['px']} | {r['batch']} | {r['params_m']:.1f} | {r['eager_fps']:.0f} | "
            f"{_fmt(r.get('compiled_fps'))} | {_fmt(r.get('compile_s'), '.0f')} | {_fmt(r['eager_mib'])} / "
            f"{_fmt(r.get('compiled_mib'))} | {r['gflop_step']:.1f} | {r['tflops']:.2f} | {share} | "
            f"{r['workers_wait_pct']:.1f} % | {r['workers_fps']:.0f} | {r['device_wait_pct']:.1f} % | "
            f"{r['device_fps']:.0f} |")
        if "note" in r:
            notes.append(f"- {r['model']}: {r['note']}")
    return lines + ([""] + notes if notes else [])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--models", default=",".join(RECIPES), help=f"comma-separated, of {', '.join(RECIPES)}")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default 30; tiny 2)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5; tiny 1)")
    ap.add_argument("--batch", type=int, default=None, help="faces per side (default: the recipe's)")
    ap.add_argument("--workers", type=int, default=None, help="loader workers per side (default: data.workers)")
    ap.add_argument("--faces", type=int, default=None, help="synthetic faces written (default 64; tiny 8)")
    ap.add_argument("--compile-backend", default="inductor", help="torch.compile backend, or none")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak, TFLOP/s")
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp32"),
                    help="autocast dtype (fp32 only for CPU smoke runs: bf16 convolutions are slow there)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU runs)")
    ap.add_argument("--tiny", action="store_true", help="narrow models, batch 2, few steps: a smoke run")
    ap.add_argument("--out", default=None, help="Markdown file to append the table to")
    ap.add_argument("--json", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    tiny = args.tiny
    args.steps = args.steps or (2 if tiny else 30)
    args.warmup = args.warmup if args.warmup is not None else (1 if tiny else 5)
    args.faces = args.faces or (8 if tiny else 64)
    if tiny:
        args.batch = args.batch or 2
        args.workers = 0 if args.workers is None else args.workers
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    load_plugins()
    unknown = [m for m in args.models.split(",") if m not in RECIPES]
    if unknown:
        ap.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = bf16_peak(name, args.peak_tflops)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.models.split(","):
            started = time.perf_counter()
            row = bench_recipe(label, args, device, Path(tmp))
            print(f"{label}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            if "px" not in row:
                print(f"note: {label} {row['note']}", flush=True)
            rows.append(row)
    meta = (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · {name} (bf16 peak "
            f"{_fmt(peak)} TFLOP/s) · torch {torch.__version__} · {args.precision} · {args.steps} timed steps · "
            f"`python tools/bench_gpu.py {' '.join(sys.argv[1:] if argv is None else argv)}`")
    text = "\n".join([meta, "", *table(rows, peak)])
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n" + text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "peak_tflops": peak, "rows": rows}, indent=1))
    with contextlib.suppress(Exception):
        torch._dynamo.reset()


if __name__ == "__main__":
    main()
