"""Benchmark extract: frames/s and faces/s of the whole pipeline against the detector alone.

The video is real footage made here from the public-domain photos in tests/photos: the Biden and
Obama portraits side by side, upscaled (1.25× for the default 640×480 frames), with a window
panning across them (one or two faces per frame), written with cv2.VideoWriter (mp4v).

Four cases, each on the same frames, interleaved (A B C D A B C D ...) after a warm-up, median of
``--repeats`` with the spread (min-max):

    detect x1    the detector's ``detect`` alone on the decoded frames, in this process
    extract x1   the pipeline with 1 worker: decode, detect, landmarks, align, write PNG + metadata
    detect xN    the detector alone in N processes, each on its share of the frames (already decoded)
    extract xN   the pipeline with N workers (processes started once, before timing)

Overhead = extract / detect at the same process count (target: at most 1.25 with the identity
descriptor, which extract computes for every face). The descriptor's own cost is timed apart, in
this process, on one thread as in the workers: CPU ms per face of ``faceswap_lite.identity.descriptor``
on the video's faces, against dlib-bin's own network (``compute_face_descriptor``) on the same
chips. Scaling = x1 time / xN time (the detector-alone scaling is what this machine allows). Each case is timed in wall-clock
and in CPU seconds of this process and its worker processes (from /proc): on a shared, busy
machine wall time swings by tens of percent, CPU time much less.

    python tools/bench_extract.py --frames 48 --repeats 3 --workers 2 --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: tools/ is then importable from the repository root

from faceswap_lite import identity  # noqa: E402
from faceswap_lite.dlib_models import import_dlib, model_path  # noqa: E402
from faceswap_lite.extract import ExtractOptions, plan_extract  # noqa: E402
from faceswap_lite.extract.detect import DetectorSpec, detector_for  # noqa: E402
from faceswap_lite.extract.pipeline import Extractor  # noqa: E402
from faceswap_lite.extract.sources import VideoReader  # noqa: E402
from tools.machine import machine_line  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "photos"


def make_video(path: Path, frames: int, width: int = 640, height: int = 480) -> Path:
    """Pan a width×height window across two real portraits side by side (upscaled ≥ 1.25×)."""
    a, b = cv2.imread(str(DATA / "biden.jpg")), cv2.imread(str(DATA / "obama.jpg"))
    h = min(a.shape[0], b.shape[0])
    canvas = np.hstack([a[:h], b[:h]])
    scale = max(1.25, 1.1 * height / canvas.shape[0], 1.25 * width / canvas.shape[1])  # room to pan
    canvas = cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
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
    _DETECTOR = detector_for(spec)
    _FRAMES = [rgb for _, rgb in VideoReader(video)]


def _detect_share(k: int, n: int) -> int:
    return sum(len(_DETECTOR.detect(rgb)) for rgb in _FRAMES[k::n])


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds of this process, of this process and its child processes), from /proc (Linux).

    Live children (the worker pools) count, unlike ``os.times``' which needs them reaped. CPU time
    barely depends on how busy a shared machine is, so it measures work where wall time cannot.
    """
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()

    def stat(pid: str) -> tuple[int, float]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick  # ppid, utime + stime

    own = stat("self")[1]
    total = own
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != me:
            try:
                ppid, cpu = stat(entry.name)
            except (OSError, IndexError, ValueError):
                continue
            total += cpu if ppid == me else 0.0
    return own, total


def descriptor_cost(frames: list[np.ndarray], detector: Any, repeats: int) -> dict[str, list[float]]:
    """CPU ms of one identity descriptor per face of ``frames`` (median over ``repeats``, after a
    warm-up, on one thread as in extract's workers): ours (``identity.descriptor``: chip + the
    PyTorch network) and the peer, dlib-bin's own network on the same chips."""
    faces = [(rgb, detector.landmarks(rgb, d.box)) for rgb in frames for d in detector.detect(rgb)]
    dlib_net = import_dlib().face_recognition_model_v1(str(model_path(identity.MODEL_FILE)))
    chips = [identity.chips(rgb, [landmarks])[0] for rgb, landmarks in faces]
    cases = {
        "ours": [lambda f=f: identity.descriptor(*f) for f in faces],
        "dlib-bin": [lambda c=c: dlib_net.compute_face_descriptor(c) for c in chips],
    }
    threads = identity.set_threads(1)
    try:
        out: dict[str, list[float]] = {}
        for name, calls in cases.items():
            calls[0]()  # warm-up
            out[name] = [1000 * statistics.median(_cpu_time(call) for _ in range(repeats)) for call in calls]
    finally:
        identity.set_threads(threads)
    return out


def _cpu_time(call: Callable[[], Any]) -> float:
    c0 = time.process_time()
    call()
    return time.process_time() - c0


def video_parser(doc: str, workers_help: str) -> argparse.ArgumentParser:
    """The options of a benchmark on the panning video: the video, the repeats, the workers, the
    Markdown file; the benchmark adds its own."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=48, help="video length in frames")
    ap.add_argument("--frame-size", default="640x480",
                    help="WxH of the video made (the photos are upscaled to fit)")
    ap.add_argument("--video", type=Path, help="use this video instead of making one")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions of each case")
    ap.add_argument("--workers", type=int, default=2, help=workers_help)
    ap.add_argument("--markdown", type=Path, help="append the results as a section to this file")
    return ap


def bench_video(args: argparse.Namespace, tmp: Path) -> tuple[Path, int, int]:
    """(the video, the width and height asked for): ``--video``, or the panning video made in ``tmp``."""
    width, height = (int(v) for v in args.frame_size.lower().split("x"))
    return args.video or make_video(tmp / "pan.mp4", args.frames, width, height), width, height


Case = tuple[str, Callable[[], Any]]


def warm_up(cases: list[Case], unit: str) -> dict[str, Any]:
    """Run each case once, untimed (worker processes start, models load); what each gave, by name."""
    out = {}
    for name, fn in cases:
        out[name] = fn()
        print(f"warm-up {name}: {out[name]} {unit}", file=sys.stderr)
    return out


# A NamedTuple, not a dataclass: tests load this file without registering it in sys.modules.
class Timings(NamedTuple):
    """Seconds of each repeat, by case: wall clock, CPU of this process, CPU with its worker processes."""

    wall: dict[str, list[float]]
    cpu_main: dict[str, list[float]]
    cpu: dict[str, list[float]]


def interleave(cases: list[Case], repeats: int, expect: dict[str, Any] | None = None) -> Timings:
    """Time the cases interleaved (A B A B ...) ``repeats`` times, so a machine's load drifting hits
    every case alike; with ``expect``, each run must give what its warm-up gave."""
    t = Timings({}, {}, {})
    for r in range(repeats):
        for name, fn in cases:
            c0, t0 = cpu_seconds(), time.perf_counter()
            got = fn()
            t1, c1 = time.perf_counter(), cpu_seconds()
            t.wall.setdefault(name, []).append(t1 - t0)
            t.cpu_main.setdefault(name, []).append(c1[0] - c0[0])
            t.cpu.setdefault(name, []).append(c1[1] - c0[1])
            assert expect is None or got == expect[name], f"{name}: {got}, warm-up had {expect[name]}"
        print(f"repeat {r + 1}/{repeats} done", file=sys.stderr)
    return t


def main(argv: list[str] | None = None) -> int:
    ap = video_parser(__doc__, workers_help="N for the xN cases (1 skips them)")
    ap.add_argument("--detector", default="dlib-hog")
    ap.add_argument("--upsample", type=int, default=1, help="the detector's upsample setting")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_extract_", ignore_cleanup_errors=True) as tmp:
        return _main(args, argv, Path(tmp))


def _main(args: argparse.Namespace, argv: list[str] | None, tmp: Path) -> int:
    video, _, _ = bench_video(args, tmp)
    frames = [rgb for _, rgb in VideoReader(video)]
    settings = {"upsample": args.upsample}
    spec = DetectorSpec.check(args.detector, settings)
    detector = detector_for(spec)
    counts = [1] + ([args.workers] if args.workers > 1 else [])

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
        faces = warm_up(cases, "faces")  # also decodes the frames in the detect-alone workers
        timings = interleave(cases, args.repeats, expect=faces)
    times, cpu, cpu_main = timings.wall, timings.cpu, timings.cpu_main

    desc_costs = descriptor_cost(frames, detector, args.repeats)
    desc_ms, peer = desc_costs["ours"], statistics.median(desc_costs["dlib-bin"])
    n_frames = len(frames)
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}

    def spread(v: list[float]) -> str:
        m = statistics.median(v)
        return f"{(min(v) / m - 1) * 100:+.0f}% / {(max(v) / m - 1) * 100:+.0f}%"

    wall = ["| case | frames/s | faces/s | time / detect alone, same processes | speed-up vs detect x1 "
            "| spread (min / max vs median) |", "|---|---|---|---|---|---|"]
    work = ["| case | CPU ms / frame | CPU / detect alone, same processes | of it in the main process "
            "| spread (min / max vs median) |", "|---|---|---|---|---|"]
    for name, _ in cases:
        ref = f"detect x{name.split('x')[-1]}"
        wall.append(f"| {name} | {n_frames / med[name]:.2f} | {faces[name] / med[name]:.2f} "
                    f"| {med[name] / med[ref]:.3f} | {med['detect x1'] / med[name]:.2f} | {spread(times[name])} |")
        main_share = statistics.median(cpu_main[name]) / cmed[name] if cmed[name] > 0 else 0.0
        work.append(f"| {name} | {1000 * cmed[name] / n_frames:.1f} | {cmed[name] / cmed[ref]:.3f} "
                    f"| {100 * main_share:.0f}% | {spread(cpu[name])} |")
    desc = statistics.median(desc_ms)
    table = ("Wall clock:\n\n" + "\n".join(wall)
             + "\n\nCPU time (this process and its worker processes):\n\n" + "\n".join(work)
             + f"\n\nIdentity descriptor alone (in this process): {desc:.1f} ms CPU per face, median of "
             f"{len(desc_ms)} faces (min {min(desc_ms):.1f}, max {max(desc_ms):.1f}); "
             f"the video's {faces['detect x1']} descriptors take "
             f"{desc * faces['detect x1'] / (1000 * cmed['detect x1']):.2f}× the detector's CPU on its frames. "
             f"dlib-bin's own network on the same chips: {peer:.1f} ms ({peer / desc:.1f}× ours).")
    cmd = "python tools/bench_extract.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(table)
    if args.markdown is not None:
        h0, w0 = frames[0].shape[:2]
        section = (
            f"\n## extract\n\n"
            f"{machine_line()}. Command: `{cmd}`.\n\n"
            f"Video: {n_frames} frames of {w0}×{h0} (mp4v) panning over two public-domain portraits from "
            f"tests/photos, {faces['detect x1']} faces in all. Detector `{args.detector}` with upsample "
            f"{args.upsample}; the pipeline decodes, detects, places 68 landmarks, aligns to 256×256 and "
            f"writes each face as a PNG with its metadata. Median of {args.repeats} interleaved repeats after "
            f"a warm-up.\n\n"
            f"{table}\n"
        )
        new_file = not args.markdown.exists()
        with args.markdown.open("a", encoding="utf-8") as fh:
            fh.write(("# Benchmarks\n" if new_file else "") + section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
