"""Benchmark the training data loader against the model's own training step rate.

For each resolution: faces/s delivered by ``faceswap_lite.data.make_loader`` (decode from the RAM
cache, augmentation, random warp, masks, collation) with each worker count, interleaved over
repeats, median and spread; then the reference: faces/s of the "original" model's training step
(both sides forward, L1, backward, Adam) on the chosen device. Loading must not be the bottleneck:
the ratio loader/model should be well above 1 for the worker count used.

    python tools/bench_loader.py                         # synthetic 256 px face set, CPU
    python tools/bench_loader.py --faces path/to/faces --resolutions 128 --workers 0 2 4 8
    python tools/bench_loader.py --device cuda --model-width 1.0

Prints one table (Markdown) at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def model_rate(resolution: int, batch_size: int, width: float, device: str, steps: int) -> list[float]:
    """Faces/s of full training steps (2 sides × batch) for the original preset at ``resolution``."""
    from faceswap_lite.registry import MODELS

    torch.manual_seed(0)
    model = MODELS.build("original", {"resolution": resolution, "width": width}, sides=("a", "b")).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-5)
    x = {s: torch.rand(batch_size, 3, resolution, resolution, device=device) for s in "ab"}

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = sum((model(x[s], s) - x[s]).abs().mean() for s in "ab")
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    rates = []
    for _ in range(steps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rates.append(2 * batch_size / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, help="a face-set folder (default: a synthetic one)")
    parser.add_argument("--count", type=int, default=256, help="synthetic faces to write")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=40, help="timed batches per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-width", type=float, default=1.0)
    parser.add_argument("--model-steps", type=int, default=5, help="0 skips the model reference")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (main process)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(HERE.parent))
    from faceswap_lite.config import AugmentConfig, MaskConfig
    from faceswap_lite.data import FaceDataset, FaceStore, loader_throughput

    tmp = None
    folder = args.faces
    if folder is None:
        from tools.synthetic_faces import make_face_set

        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name)
        make_face_set(folder, args.count, 256, seed=0)

    rows = []
    for res in args.resolutions:
        start = time.perf_counter()
        store = FaceStore(folder, res, cache=True)
        decode = len(store) / (time.perf_counter() - start)
        dataset = FaceDataset(store, augment=AugmentConfig(), mask=MaskConfig(), seed=0)
        results: dict[int, list[float]] = {w: [] for w in args.workers}
        for _ in range(args.repeats):  # interleaved: w0 w1 w2 w0 w1 w2 ...
            for w in args.workers:
                results[w].append(loader_throughput(dataset, args.batch_size, workers=w, batches=args.batches,
                                                    warmup=3))
        ref = model_rate(res, args.batch_size, args.model_width, args.device, args.model_steps) \
            if args.model_steps > 0 else []
        ref_med = statistics.median(ref) if ref else None
        rows.append((f"{res} px, decode+resize once (cache build)", decode, None, None, None))
        for w in args.workers:
            med = statistics.median(results[w])
            per = med / max(w, 1)
            rows.append((f"{res} px, loader, {w} worker{'s' if w != 1 else ''}", med, per,
                         (min(results[w]), max(results[w])), med / ref_med if ref_med else None))
        if ref_med:
            rows.append((f"{res} px, model step (original ×{args.model_width:g}, {args.device}, reference)",
                         ref_med, None, (min(ref), max(ref)), 1.0))

    print(f"\nbatch {args.batch_size}, {args.threads} torch threads, {os.cpu_count()} CPUs, "
          f"median of {args.repeats} (loader) / {args.model_steps} (model)\n")
    print("| case | faces/s | per worker | spread (min–max) | ÷ model |")
    print("|---|---:|---:|---:|---:|")
    for name, med, per, spread, ratio in rows:
        per_s = f"{per:.0f}" if per is not None else ""
        spread_s = f"{spread[0]:.0f}–{spread[1]:.0f}" if spread else ""
        ratio_s = f"{ratio:.2f}" if ratio is not None else ""
        print(f"| {name} | {med:.0f} | {per_s} | {spread_s} | {ratio_s} |")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
