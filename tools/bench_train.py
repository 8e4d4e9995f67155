"""Training-step benchmark: faces/s and where a step's time goes, real loader vs in-memory batches.

    python tools/bench_train.py                       # 64 and 128 px presets, CPU, 2 threads
    python tools/bench_train.py --device cuda --precision bf16 --compile
    python tools/bench_train.py --loader-only         # the data loader alone, per worker count
    python tools/bench_train.py --augment-on workers,device   # both data.augment_on values

For each preset the same step (forward, loss mix, backward, optimizer) is timed twice, interleaved
A B A B after a warm-up: (A) fed by the real DataLoader over a face set (synthetic faces written as
real PNGs with metadata), (B) on batches already in memory (no loader). The step is split into
data wait / forward / loss / backward / optimizer with synchronisation at each boundary (only in
this benchmark; the trainer itself never synchronises per step). faces/s = batch × sides × steps / s.
With ``--augment-on device`` the workers hand over raw cached faces and the batch is augmented on the
device in the "data" part (:mod:`faceswap_lite.data.device_augment`); the in-memory batch is the same.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceswap_lite.config import load_config  # noqa: E402
from faceswap_lite.data import load_face_set, loader_throughput, make_loader  # noqa: E402
from faceswap_lite.data.device_augment import RawFaceDataset, augment_batch  # noqa: E402
from faceswap_lite.losses import LossMix  # noqa: E402
from faceswap_lite.registry import MODELS  # noqa: E402
from tools.machine import cpu_name, machine_line, sync  # noqa: E402

PARTS = ("data", "forward", "loss", "backward", "optimizer")


def make_faces(folder: Path, n: int, size: int) -> None:
    from tools.synthetic_faces import make_face_set

    make_face_set(folder, n, size=size, seed=0)


def timed_steps(model, mix, opt, batches, device, steps, amp_dtype):  # noqa: ANN001
    """Run ``steps`` steps from the iterator ``batches``; return per-part seconds (lists)."""
    times = {p: [] for p in PARTS}
    for _ in range(steps):
        t0 = time.perf_counter()
        b = next(batches)
        x = b["input"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = b["target"].to(device, non_blocking=True)
        masks = [b[k].to(device, non_blocking=True) for k in ("face", "eyes", "mouth")]
        sync(device)
        t1 = time.perf_counter()
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = model(x, "a")
        sync(device)
        t2 = time.perf_counter()
        res = mix(out, y, *masks)
        sync(device)
        t3 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        res.total.backward()
        sync(device)
        t4 = time.perf_counter()
        opt.step()
        sync(device)
        t5 = time.perf_counter()
        for p, dt in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            times[p].append(dt)
    return times


def in_memory(batch: dict[str, torch.Tensor]):  # noqa: ANN201
    while True:
        yield batch


def loader_batches(dataset, cfg, args: argparse.Namespace, device: torch.device,  # noqa: ANN001, ANN201
                   augment_on: str):
    """Batches from the real loader; with ``device`` the workers hand over raw faces and the batch is
    augmented here, on ``device`` (so the "data" part of the step holds that augmentation)."""
    ds = dataset if augment_on == "workers" else RawFaceDataset.of(dataset)
    it = iter(make_loader(ds, args.batch, workers=args.workers, seed=0, train=True, pin_memory=device.type == "cuda"))
    if augment_on == "workers":
        yield from it
        return
    for raw in it:
        yield augment_batch(raw, cfg.augment, cfg.mask, device)


def bench_preset(name: str, model_cfg: dict, args: argparse.Namespace, device: torch.device, rows: list,
                 augment_on: str = "workers") -> None:
    cfg = load_config(args.config, [f"data.batch_size={args.batch}", f"data.workers={args.workers}"])
    model = MODELS.build_table(model_cfg, sides=("a",)).to(device).to(memory_format=torch.channels_last)
    res = model.resolution
    if args.compile:
        model = torch.compile(model)
    mix = LossMix(cfg.loss, cfg.mask.eye_weight, cfg.mask.mouth_weight).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, fused=True)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    with tempfile.TemporaryDirectory() as tmp:
        make_faces(Path(tmp) / "faces", args.faces, max(res, 128))
        sets = load_face_set(Path(tmp) / "faces", res, cfg.data, cfg.augment, cfg.mask, seed=0)
        real = loader_batches(sets.train, cfg, args, device, augment_on)
        fixed = next(real)
        mem = in_memory(fixed)
        timed_steps(model, mix, opt, real, device, args.warmup, amp)
        timed_steps(model, mix, opt, mem, device, args.warmup, amp)
        per = {"loader": {p: [] for p in PARTS}, "memory": {p: [] for p in PARTS}}
        for _ in range(args.repeats):  # interleaved A B A B
            for key, it in (("loader", real), ("memory", mem)):
                t = timed_steps(model, mix, opt, it, device, args.steps, amp)
                for p in PARTS:
                    per[key][p].append(sum(t[p]) / args.steps)
        del real
    step = {k: [sum(v[p][i] for p in PARTS) for i in range(args.repeats)] for k, v in per.items()}
    fps = {k: [args.batch / s for s in v] for k, v in step.items()}
    med = {k: statistics.median(v) for k, v in fps.items()}
    split = {p: statistics.median(per["loader"][p]) for p in PARTS}
    total = sum(split.values())
    rows.append({
        "case": f"{name} ({res} px), augment on {augment_on}", "loader_fps": med["loader"], "memory_fps": med["memory"],
        "ratio": med["loader"] / med["memory"],
        "spread": f"{min(fps['loader']):.1f}–{max(fps['loader']):.1f}",
        "split": " / ".join(f"{100 * split[p] / total:.0f}%" for p in PARTS),
        "data_wait_pct": 100 * split["data"] / total,
    })


def device_augment_rate(dataset, cfg, args: argparse.Namespace, device: torch.device) -> float:  # noqa: ANN001
    """Faces/s of :func:`augment_batch` alone on ``device`` (raw batches already loaded)."""
    raw = next(iter(make_loader(RawFaceDataset.of(dataset), args.batch, workers=0, seed=0, pin_memory=False)))
    augment_batch(raw, cfg.augment, cfg.mask, device)
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        augment_batch(raw, cfg.augment, cfg.mask, device)
    sync(device)
    return args.steps * args.batch / (time.perf_counter() - start)


def bench_loader(args: argparse.Namespace, rows: list, modes: list[str], device: torch.device) -> None:
    """Loader faces/s per worker count and augment_on; with ``device`` the workers only hand over
    raw faces, and the augmentation's own rate on ``device`` is a row of its own."""
    cfg = load_config(args.config)
    for res in args.resolutions:
        with tempfile.TemporaryDirectory() as tmp:
            make_faces(Path(tmp) / "faces", args.faces, max(res, 128))
            sets = load_face_set(Path(tmp) / "faces", res, cfg.data, cfg.augment, cfg.mask, seed=0)
            for mode in modes:
                ds = sets.train if mode == "workers" else RawFaceDataset.of(sets.train)
                for w in sorted({0, 1, args.workers}):
                    fps = [loader_throughput(ds, args.batch, workers=w, batches=args.steps * 2, warmup=3)
                           for _ in range(args.repeats)]
                    med = statistics.median(fps)
                    rows.append({"case": f"loader {res} px, augment on {mode}, {w} workers", "fps": med,
                                 "per_worker": med / max(w, 1), "spread": f"{min(fps):.0f}–{max(fps):.0f}"})
                if mode == "device":
                    fps = [device_augment_rate(sets.train, cfg, args, device) for _ in range(args.repeats)]
                    rows.append({"case": f"augment_batch alone, {res} px, {device.type}, {args.threads} threads",
                                 "fps": statistics.median(fps), "per_worker": None,
                                 "spread": f"{min(fps):.0f}–{max(fps):.0f}"})


def _per_worker(row: dict) -> str:
    return "" if row["per_worker"] is None else f"{row['per_worker']:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--faces", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5, help="steps per repetition")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--width", type=float, default=1.0, help="model width multiplier")
    ap.add_argument("--presets", default="original,face128")
    ap.add_argument("--config", default=None, help="config whose [[loss]] mix and augmentation to use")
    ap.add_argument("--loader-only", action="store_true")
    ap.add_argument("--augment-on", default="workers", choices=("workers", "device", "workers,device"),
                    help="data.augment_on to measure (workers,device: both, interleaved by preset)")
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256], help="--loader-only sizes")
    ap.add_argument("--out", default=None, help="Markdown file to append the table to")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows: list[dict] = []
    modes = args.augment_on.split(",")
    if args.loader_only:
        bench_loader(args, rows, modes, device)
        header = "| case | faces/s | per worker | spread |\n|---|---|---|---|"
        lines = [f"| {r['case']} | {r['fps']:.0f} | {_per_worker(r)} | {r['spread']} |" for r in rows]
    else:
        for preset in args.presets.split(","):
            for mode in modes:
                bench_preset(preset, {"name": preset, "width": args.width}, args, device, rows, mode)
        header = ("| case | faces/s (real loader) | faces/s (in memory) | ratio | spread (loader) | "
                  "data / forward / loss / backward / optimizer |\n|---|---|---|---|---|---|")
        lines = [f"| {r['case']} | {r['loader_fps']:.1f} | {r['memory_fps']:.1f} | {r['ratio']:.2f} | {r['spread']} | "
                 f"{r['split']} |" for r in rows]
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else ""
    meta = (f"{datetime.date.today()} · {cpu_name()}, {args.threads} threads{', ' + gpu if gpu else ''} · "
            f"torch {torch.__version__} · `python tools/bench_train.py {' '.join(sys.argv[1:])}`")
    table = "\n".join([meta, "", f"Machine: {machine_line()}.", "", header, *lines])
    print(table)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
