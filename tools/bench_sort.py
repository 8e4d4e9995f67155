"""Benchmark sort: faces/s per key on a face set of a few thousand faces, against reading the set.

The set is made here: the photos of tests/photos are extracted (5 real faces, with descriptors), then
each face is written ``--faces / 5`` times with fresh pixel noise (σ = 2 grey levels) and a small
brightness change, so every PNG differs and compresses like a real one, and its descriptor moved
by Gaussian noise (σ = 0.01 per component, about 0.11 in distance: one person's faces stay one
group, as in a real set of one person).

Cases, each run ``--repeats`` times (interleaved, median), timed in CPU seconds of this process
(``time.process_time``: a shared machine's load changes wall time, not that) and in wall time:

    read meta      read_meta of every file (what the pose, size and score keys need)
    read pixels    read_face of every file (what blur needs)
    sort --by K    sort_faceset(..., dry_run=True) for each key K, and a copy for ``blur``
    no descriptors sort --by identity --dry-run on ``--old-faces`` of the faces written without
                   their descriptor, as in a set extracted before descriptors: each is computed
                   from the crop (faces/s over those faces)

    python tools/bench_sort.py --faces 3000 --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceswap_lite.extract import ExtractOptions, plan_extract, run_extract  # noqa: E402
from faceswap_lite.faceset import FaceMeta, list_faces, read_face, read_meta, write_face  # noqa: E402
from faceswap_lite.sort import sort_faceset  # noqa: E402
from tools.machine import machine_line  # noqa: E402

DATA = ROOT / "tests" / "photos"
NO_DESCRIPTORS = "sort --by identity --dry-run, no stored descriptors"


def real_faces(tmp: Path) -> list[tuple[np.ndarray, FaceMeta]]:
    """The faces of tests/photos, extracted into ``tmp``/real."""
    run_extract(plan_extract([str(DATA)], tmp / "real", ExtractOptions(workers=1)))
    return [read_face(p) for p in list_faces(tmp / "real")]


def make_set(out: Path, faces: int, real: list[tuple[np.ndarray, FaceMeta]], seed: int = 0,
             descriptors: bool = True) -> None:
    """Write ``faces`` face PNGs into ``out`` from ``real`` (see the docstring), without their
    descriptors if not ``descriptors``."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True)
    for i in range(faces):
        rgb, meta = real[i % len(real)]
        noisy = rgb.astype(np.float32) * rng.uniform(0.9, 1.1) + rng.normal(0, 2, rgb.shape)
        # Each copy's noise is added to the real face's descriptor (a replace: the real one stays).
        moved = (meta.descriptor + rng.normal(0, 0.01, 128)).astype(np.float32) if descriptors else None
        write_face(out / f"face_{i:06d}.png", np.clip(noisy, 0, 255).astype(np.uint8),
                   dataclasses.replace(meta, descriptor=moved), compress_level=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keys", default="score,yaw,size,identity,face,blur")
    ap.add_argument("--old-faces", type=int, default=100,
                    help="faces of the set without descriptors (0: skip that case)")
    ap.add_argument("--markdown", type=Path, help="append the results as a section to this file")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_sort_"))
    try:
        folder = tmp / "set"
        real = real_faces(tmp)
        make_set(folder, args.faces, real)
        n = len(list_faces(folder))
        old = tmp / "old"
        if args.old_faces:
            make_set(old, args.old_faces, real, seed=1, descriptors=False)
        copies = iter(range(10**6))
        cases = {
            "read meta": lambda: [read_meta(p) for p in list_faces(folder)],
            "read pixels": lambda: [read_face(p) for p in list_faces(folder)],
        }
        for key in args.keys.split(","):
            cases[f"sort --by {key} --dry-run"] = lambda key=key: sort_faceset(folder, key, dry_run=True)
        cases["sort --by blur (copy)"] = lambda: sort_faceset(folder, "blur", tmp / f"out{next(copies)}")
        if args.old_faces:
            cases[NO_DESCRIPTORS] = lambda: sort_faceset(old, "identity", dry_run=True)
        cpu: dict[str, list[float]] = {k: [] for k in cases}
        wall: dict[str, list[float]] = {k: [] for k in cases}
        for fn in cases.values():  # warm-up (models loaded, files in the page cache)
            fn()
        for r in range(args.repeats):
            for name, fn in cases.items():
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                cpu[name].append(time.process_time() - c0)
                wall[name].append(time.perf_counter() - t0)
            for out in tmp.glob("out*"):
                shutil.rmtree(out)
            print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ref = statistics.median(cpu["read pixels"])
    rows = ["| case | faces/s (CPU time) | faces/s (wall) | CPU / reading the pixels | CPU spread (min / max vs median) |",
            "|---|---|---|---|---|"]
    for name in cases:
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        faces = args.old_faces if name == NO_DESCRIPTORS else n
        ratio = c / ref * n / faces  # per face, against reading one face's pixels
        rows.append(f"| {name} | {faces / c:.0f} | {faces / w:.0f} | {ratio:.2f} | "
                    f"{(min(cpu[name]) / c - 1) * 100:+.0f}% / {(max(cpu[name]) / c - 1) * 100:+.0f}% |")
    table = "\n".join(rows)
    cmd = "python tools/bench_sort.py " + " ".join(argv if argv is not None else sys.argv[1:])
    head = (f"{machine_line()}. Command: `{cmd}`. {n} faces of 256² made from the 5 real faces of tests/photos "
            f"(see the script), and {args.old_faces} more without their descriptors. CPU time of this one "
            f"process, median of {args.repeats}.")
    print(f"{head}\n\n{table}")
    if args.markdown is not None:
        with args.markdown.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## sort\n\n{head}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
