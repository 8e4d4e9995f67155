"""Benchmark convert: frames/s against extract alone on the same video, with the time per stage.

The video is the one tools/bench_extract.py makes (a window panning over two public-domain
portraits from tests/data, one or two faces per frame). Its faces are extracted, a model of
``--recipe`` is trained on them for ``--steps`` steps (speed does not depend on what the weights
learnt), then two cases run on the same video, interleaved (A B A B ...) after a warm-up, median of
``--repeats``:

    extract xN   the extract pipeline with N workers: decode, detect, landmarks, align, descriptor,
                 write PNG faces
    convert xN   convert with N detector workers: decode, detect, landmarks, align, model, mask,
                 colour, blend, encode H.264

Both keep their worker processes started once, before timing. The ratio convert / extract is the
cost of convert in units of extract (goal: at most 1.3 on CPU). Convert's own split into decode /
detect / model / blend / encode comes from its summary (detect = the workers' detection time,
summed over workers, plus alignment; the others are main-process and thread wall time, which overlap).

    python tools/bench_convert.py --frames 48 --repeats 3 --workers 2
    python tools/bench_convert.py --recipe sae-128 --device cuda      # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_extract import cpu_name, cpu_seconds, make_video  # tools/ is on sys.path when run as a script

from faceswap_lite.config import load_config, recipe_path
from faceswap_lite.convert.pipeline import STAGES, Converter, ConvertOptions, plan_convert
from faceswap_lite.extract import ExtractOptions, plan_extract
from faceswap_lite.extract.pipeline import Extractor
from faceswap_lite.train.trainer import train


def _train(video: Path, tmp: Path, recipe: str, steps: int, device: str | None, size: int) -> Path:
    faces = tmp / "faces"
    with Extractor(plan := plan_extract([str(video)], faces, ExtractOptions(size=size))) as ex:
        ex.run(plan)
    overrides = [f"train.steps={steps}", "train.preview_every=100000", "train.eval_every=100000",
                 "data.val_fraction=0.0", "data.workers=0"]
    if device:
        overrides.append(f"train.device={device}")
    cfg = load_config(recipe_path(recipe), overrides)
    train(cfg, {"a": faces}, tmp / "run", progress=False)
    return tmp / "run"


def main(argv: list[str] | None = None) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench_convert_"))
    try:
        return _main(argv, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _main(argv: list[str] | None, tmp: Path) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=48, help="video length in frames")
    ap.add_argument("--frame-size", default="640x480", help="WxH of the video made")
    ap.add_argument("--video", type=Path, help="use this video instead of making one")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions of each case")
    ap.add_argument("--workers", type=int, default=2, help="detector workers of both cases")
    ap.add_argument("--recipe", default="cpu-quick", help="the model's training recipe")
    ap.add_argument("--steps", type=int, default=2, help="training steps before timing")
    ap.add_argument("--size", type=int, default=128, help="crop size of the extracted faces")
    ap.add_argument("--device", help="train.device and convert --device (default: the recipe's)")
    ap.add_argument("--markdown", type=Path, help="append the results as a section to this file")
    args = ap.parse_args(argv)

    width, height = (int(v) for v in args.frame_size.lower().split("x"))
    video = args.video or make_video(tmp / "pan.mp4", args.frames, width, height)
    print("extracting and training the model...", file=sys.stderr)
    run = _train(video, tmp, args.recipe, args.steps, args.device, args.size)

    n = args.workers
    extract_plan = plan_extract([str(video)], tmp / "bench_faces",
                                ExtractOptions(size=args.size, workers=n, overwrite=True))
    convert_plan = plan_convert([str(video)], tmp / "converted", run,
                                ConvertOptions(workers=n, device=args.device))
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    frames = 0
    with contextlib.ExitStack() as stack:
        extractor = stack.enter_context(Extractor(extract_plan))
        converter = stack.enter_context(Converter(convert_plan))

        def run_convert() -> int:
            summary = converter.run()
            for s in STAGES:
                stages[s].append(summary.times[s])
            return summary.frames

        cases = [(f"extract x{n}", lambda: extractor.run(extract_plan).frames), (f"convert x{n}", run_convert)]
        for name, fn in cases:  # warm-up: worker processes started, models loaded
            frames = fn()
            print(f"warm-up {name}: {frames} frames", file=sys.stderr)
        for s in STAGES:
            stages[s].clear()
        for r in range(args.repeats):
            for name, fn in cases:
                c0, t0 = cpu_seconds(), time.perf_counter()
                fn()
                t1, c1 = time.perf_counter(), cpu_seconds()
                times.setdefault(name, []).append(t1 - t0)
                cpu.setdefault(name, []).append(c1[1] - c0[1])
            print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    ex = cases[0][0]
    rows = ["| case | frames/s | wall / extract | CPU ms / frame | CPU / extract |", "|---|---|---|---|---|"]
    for name, _ in cases:
        rows.append(f"| {name} | {frames / med[name]:.2f} | {med[name] / med[ex]:.2f} "
                    f"| {1000 * cmed[name] / frames:.1f} | {cmed[name] / cmed[ex]:.2f} |")
    split = ", ".join(f"{s} {1000 * statistics.median(stages[s]) / frames:.1f}" for s in STAGES)
    m = convert_plan.model
    table = ("\n".join(rows) + f"\n\nconvert, ms per frame by stage (median): {split}. Model: {args.recipe} "
             f"({m.resolution} px) on {m.device}.")
    print(table)
    if args.markdown is not None:
        cmd = "python tools/bench_convert.py " + " ".join(argv if argv is not None else sys.argv[1:])
        section = (f"\n## convert\n\n{dt.date.today().isoformat()}, {cpu_name()}, {os.cpu_count()} cores "
                   f"(load average {os.getloadavg()[0]:.1f} at the end). Command: `{cmd}`.\n\n"
                   f"Video: {frames} frames of {width}×{height} from tools/bench_extract.py; median of "
                   f"{args.repeats} interleaved repeats after a warm-up.\n\n{table}\n")
        with args.markdown.open("a", encoding="utf-8") as fh:
            fh.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
