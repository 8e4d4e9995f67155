"""Training-step benchmark: faces/s and where a step's time goes, real loader vs in-memory batches.

    python tools/bench_train.py                       # 64 and 128 px presets, CPU, 2 threads
    python tools/bench_train.py --device cuda --precision bf16 --compile
    python tools/bench_train.py --loader-only         # the data loader alone, per worker count

For each preset the same step (forward, loss mix, backward, optimizer) is timed twice, interleaved
A B A B after a warm-up: (A) fed by the real DataLoader over a face set (synthetic faces written as
real PNGs with metadata), (B) on batches already in memory (no loader). The step is split into
data wait / forward / loss / backward / optimizer with synchronisation at each boundary (only in
this benchmark; the trainer itself never synchronises per step). faces/s = batch × sides × steps / s.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceswap_lite.config import load_config  # noqa: E402
from faceswap_lite.data.dataset import load_face_set, loader_throughput, make_loader  # noqa: E402
from faceswap_lite.losses import LossMix  # noqa: E402
from faceswap_lite.models import build_model  # noqa: E402

PARTS = ("data", "forward", "loss", "backward", "optimizer")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_faces(folder: Path, n: int, size: int) -> None:
    from tests.training_data.faces import make_face_set

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


def bench_preset(name: str, model_cfg: dict, args: argparse.Namespace, device: torch.device, rows: list) -> None:
    cfg = load_config(args.config, [f"data.batch_size={args.batch}", f"data.workers={args.workers}"])
    model = build_model(model_cfg, ["a"]).to(device).to(memory_format=torch.channels_last)
    res = model.resolution
    if args.compile:
        model = torch.compile(model)
    mix = LossMix(cfg.loss, cfg.mask.eye_weight, cfg.mask.mouth_weight).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, fused=True)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    with tempfile.TemporaryDirectory() as tmp:
        make_faces(Path(tmp) / "faces", args.faces, max(res, 128))
        sets = load_face_set(Path(tmp) / "faces", res, cfg.data, cfg.augment, cfg.mask, seed=0)
        loader = make_loader(sets.train, args.batch, workers=args.workers, seed=0, train=True,
                             pin_memory=device.type == "cuda")
        real = iter(loader)
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
        "case": f"{name} ({res} px)", "loader_fps": med["loader"], "memory_fps": med["memory"],
        "ratio": med["loader"] / med["memory"],
        "spread": f"{min(fps['loader']):.1f}–{max(fps['loader']):.1f}",
        "split": " / ".join(f"{100 * split[p] / total:.0f}%" for p in PARTS),
        "data_wait_pct": 100 * split["data"] / total,
    })


def bench_loader(args: argparse.Namespace, rows: list) -> None:
    cfg = load_config(args.config)
    for res in (64, 128):
        with tempfile.TemporaryDirectory() as tmp:
            make_faces(Path(tmp) / "faces", args.faces, max(res, 128))
            sets = load_face_set(Path(tmp) / "faces", res, cfg.data, cfg.augment, cfg.mask, seed=0)
            for w in sorted({0, 1, args.workers}):
                fps = [loader_throughput(sets.train, args.batch, workers=w, batches=args.steps * 2, warmup=3)
                       for _ in range(args.repeats)]
                rows.append({"case": f"loader {res} px, {w} workers", "fps": statistics.median(fps),
                             "spread": f"{min(fps):.0f}–{max(fps):.0f}"})


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
    ap.add_argument("--out", default=None, help="Markdown file to append the table to")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows: list[dict] = []
    if args.loader_only:
        bench_loader(args, rows)
        header = "| case | faces/s | spread |\n|---|---|---|"
        lines = [f"| {r['case']} | {r['fps']:.0f} | {r['spread']} |" for r in rows]
    else:
        for preset in args.presets.split(","):
            bench_preset(preset, {"name": preset, "width": args.width}, args, device, rows)
        header = ("| case | faces/s (real loader) | faces/s (in memory) | ratio | spread (loader) | "
                  "data / forward / loss / backward / optimizer |\n|---|---|---|---|---|---|")
        lines = [f"| {r['case']} | {r['loader_fps']:.1f} | {r['memory_fps']:.1f} | {r['ratio']:.2f} | {r['spread']} | "
                 f"{r['split']} |" for r in rows]
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else ""
    meta = (f"{datetime.date.today()} · {cpu_name()}, {args.threads} threads{', ' + gpu if gpu else ''} · "
            f"torch {torch.__version__} · `python tools/bench_train.py {' '.join(sys.argv[1:])}`")
    table = "\n".join([meta, "", header, *lines])
    print(table)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
