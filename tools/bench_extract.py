"""Benchmark extract: frames/s and faces/s of the whole pipeline against the detector alone.

The video is real footage made here from the public-domain photos in tests/data: the Biden and
Obama portraits side by side, upscaled to 1.25×, with a 640×480 window panning across them (one or
two faces per frame), written with cv2.VideoWriter (mp4v).

Four cases, each on the same frames, interleaved (A B C D A B C D ...) after a warm-up, median of
``--repeats`` with the spread (min-max):

    detect x1    the detector's ``detect`` alone on the decoded frames, in this process
    extract x1   the pipeline with 1 worker: decode, detect, landmarks, align, write PNG + metadata
    detect xN    the detector alone in N processes, each on its share of the frames (already decoded)
    extract xN   the pipeline with N workers (processes started once, before timing)

Overhead = extract / detect at the same process count (target: at most 1.10). Scaling = x1 time /
xN time (the detector-alone scaling is what this machine allows).

    python tools/bench_extract.py --frames 48 --repeats 3 --workers 2 --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceswap_lite.extract import ExtractOptions, plan_extract
from faceswap_lite.extract.detect import DetectorSpec, build_detector, resolve_detector
from faceswap_lite.extract.pipeline import Extractor
from faceswap_lite.extract.sources import VideoReader

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def make_video(path: Path, frames: int, width: int = 640, height: int = 480) -> Path:
    """Pan a width×height window across two real portraits side by side (1.25× upscaled)."""
    a, b = cv2.imread(str(DATA / "biden.jpg")), cv2.imread(str(DATA / "obama.jpg"))
    h = min(a.shape[0], b.shape[0])
    canvas = np.hstack([a[:h], b[:h]])
    canvas = cv2.resize(canvas, None, fx=1.25, fy=1.25, interpolation=cv2.INTER_CUBIC)
    if canvas.shape[0] < height:
        canvas = cv2.copyMakeBorder(canvas, 0, height - canvas.shape[0], 0, 0, cv2.BORDER_REFLECT)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    if not writer.isOpened():
        raise SystemExit("OpenCV cannot write mp4v here")
    span_x, span_y = canvas.shape[1] - width, canvas.shape[0] - height
    for i in range(frames):
        t = i / max(frames - 1, 1)
        x = round(span_x * (0.5 - 0.5 * np.cos(2 * np.pi * t)))  # there and back
        y = round(span_y * t)
        writer.write(np.ascontiguousarray(canvas[y:y + height, x:x + width]))
    writer.release()
    return path


# Detector-alone workers: each decodes the video once (untimed) and detects on its share.
_FRAMES: list[np.ndarray] = []
_DETECTOR: Any = None


def _init_detect(spec: DetectorSpec, video: str) -> None:
    global _FRAMES, _DETECTOR
    cv2.setNumThreads(1)
    _DETECTOR = build_detector(spec)
    _FRAMES = [rgb for _, rgb in VideoReader(video)]


def _detect_share(k: int, n: int) -> int:
    return sum(len(_DETECTOR.detect(rgb)) for rgb in _FRAMES[k::n])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=48, help="video length in frames")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions of each case")
    ap.add_argument("--workers", type=int, default=2, help="N for the xN cases (1 skips them)")
    ap.add_argument("--detector", default="dlib-hog")
    ap.add_argument("--upsample", type=int, default=1, help="the detector's upsample setting")
    ap.add_argument("--video", type=Path, help="use this video instead of making one")
    ap.add_argument("--markdown", type=Path, help="append the results as a section to this file")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_extract_"))
    video = args.video or make_video(tmp / "pan.mp4", args.frames)
    frames = [rgb for _, rgb in VideoReader(video)]
    settings = {"upsample": args.upsample}
    spec = resolve_detector(args.detector, settings)
    detector = build_detector(spec)
    counts = [1] + ([args.workers] if args.workers > 1 else [])

    times: dict[str, list[float]] = {}
    faces: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        extractors, plans, pools = {}, {}, {}
        for n in counts:
            options = ExtractOptions(detector=args.detector, detector_settings=settings, workers=n, overwrite=True)
            plans[n] = plan_extract([str(video)], tmp / f"faces_x{n}", options)
            extractors[n] = stack.enter_context(Extractor(plans[n]))
            if n > 1:
                pools[n] = stack.enter_context(ProcessPoolExecutor(
                    n, mp_context=multiprocessing.get_context("spawn"), initializer=_init_detect,
                    initargs=(spec, str(video))))

        def detect_x1() -> int:
            return sum(len(detector.detect(rgb)) for rgb in frames)

        def detect_xn(n: int) -> int:
            return sum(pools[n].map(_detect_share, range(n), [n] * n))

        def extract_xn(n: int) -> int:
            return extractors[n].run(plans[n]).faces_written

        cases = [("detect x1", detect_x1), ("extract x1", lambda: extract_xn(1))]
        for n in counts[1:]:
            cases += [(f"detect x{n}", lambda n=n: detect_xn(n)), (f"extract x{n}", lambda n=n: extract_xn(n))]
        for name, fn in cases:  # warm-up: starts every worker process (models loaded, frames decoded)
            faces[name] = fn()
            print(f"warm-up {name}: {faces[name]} faces", file=sys.stderr)
        for r in range(args.repeats):
            for name, fn in cases:
                t0 = time.perf_counter()
                n_faces = fn()
                times.setdefault(name, []).append(time.perf_counter() - t0)
                assert n_faces == faces[name], f"{name}: {n_faces} faces, warm-up had {faces[name]}"
            print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr)

    n_frames = len(frames)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = []
    for name, _ in cases:
        v = times[name]
        procs = int(name.split("x")[-1])
        ref = med[f"detect x{procs}"]
        rows.append((name, n_frames / med[name], faces[name] / med[name], med[name] / ref, med["detect x1"] / med[name],
                     (min(v) / med[name] - 1) * 100, (max(v) / med[name] - 1) * 100))
    header = ("| case | frames/s | faces/s | time / detect alone (same processes) | speed-up vs detect x1 "
              "| spread (min, max vs median) |")
    lines = [header, "|---|---|---|---|---|---|"]
    for name, fps, fcs, ratio, speedup, lo, hi in rows:
        lines.append(f"| {name} | {fps:.2f} | {fcs:.2f} | {ratio:.3f} | {speedup:.2f} | {lo:+.1f}% / {hi:+.1f}% |")
    table = "\n".join(lines)
    cmd = "python tools/bench_extract.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(table)
    if args.markdown is not None:
        h0, w0 = frames[0].shape[:2]
        section = (
            f"\n## extract\n\n"
            f"{dt.date.today().isoformat()}, {cpu_name()}, {os.cpu_count()} cores (shared machine; load average "
            f"{os.getloadavg()[0]:.1f} at the end). Command: `{cmd}`.\n\n"
            f"Video: {n_frames} frames of {w0}×{h0} (mp4v) panning over two public-domain portraits from "
            f"tests/data, {faces['detect x1']} faces in all. Detector `{args.detector}` with upsample "
            f"{args.upsample}; the pipeline decodes, detects, places 68 landmarks, aligns to 256×256 and writes "
            f"each face as a PNG with its metadata. Median of {args.repeats} interleaved repeats after a warm-up.\n\n"
            f"{table}\n"
        )
        with args.markdown.open("a", encoding="utf-8") as fh:
            fh.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
