"""Benchmark convert: frames/s against extract alone on the same video, with the time per stage.

The video is the one tools/bench_extract.py makes (a window panning over two public-domain
portraits from tests/photos, one or two faces per frame). Its faces are extracted, a model of
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
import statistics
import sys
import tempfile
from pathlib import Path

# tools/ is on sys.path when run as a script; bench_extract puts the repository root there (tools.machine)
from bench_extract import bench_video, interleave, video_parser, warm_up

from faceswap_lite.config import load_config, recipe_path
from faceswap_lite.convert.converter import STAGES, Converter
from faceswap_lite.convert.options import ConvertOptions
from faceswap_lite.convert.pipeline import plan_convert
from faceswap_lite.extract import ExtractOptions, plan_extract
from faceswap_lite.extract.pipeline import Extractor
from faceswap_lite.train.trainer import train
from tools.machine import machine_line


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
    ap = video_parser(__doc__, workers_help="detector workers of both cases")
    ap.add_argument("--recipe", default="cpu-quick", help="the model's training recipe")
    ap.add_argument("--steps", type=int, default=2, help="training steps before timing")
    ap.add_argument("--size", type=int, default=128, help="crop size of the extracted faces")
    ap.add_argument("--device", help="train.device and convert --device (default: the recipe's)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_convert_", ignore_cleanup_errors=True) as tmp:
        return _main(args, argv, Path(tmp))


def _main(args: argparse.Namespace, argv: list[str] | None, tmp: Path) -> int:
    video, width, height = bench_video(args, tmp)
    print("extracting and training the model...", file=sys.stderr)
    run = _train(video, tmp, args.recipe, args.steps, args.device, args.size)

    n = args.workers
    extract_plan = plan_extract([str(video)], tmp / "bench_faces",
                                ExtractOptions(size=args.size, workers=n, overwrite=True))
    convert_plan = plan_convert([str(video)], tmp / "converted", run,
                                ConvertOptions(workers=n, device=args.device))
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    with contextlib.ExitStack() as stack:
        extractor = stack.enter_context(Extractor(extract_plan))
        converter = stack.enter_context(Converter(convert_plan))

        def run_convert() -> int:
            summary = converter.run()
            for s in STAGES:
                stages[s].append(summary.times[s])
            return summary.frames

        cases = [(f"extract x{n}", lambda: extractor.run(extract_plan).frames), (f"convert x{n}", run_convert)]
        frames = warm_up(cases, "frames")[f"convert x{n}"]
        for s in STAGES:
            stages[s].clear()
        timings = interleave(cases, args.repeats)

    med = {k: statistics.median(v) for k, v in timings.wall.items()}
    cmed = {k: statistics.median(v) for k, v in timings.cpu.items()}
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
        section = (f"\n## convert\n\n{machine_line()}. Command: `{cmd}`.\n\n"
                   f"Video: {frames} frames of {width}×{height} from tools/bench_extract.py; median of "
                   f"{args.repeats} interleaved repeats after a warm-up.\n\n{table}\n")
        with args.markdown.open("a", encoding="utf-8") as fh:
            fh.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
