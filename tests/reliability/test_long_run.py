"""A long run of tiny steps with frequent saves: memory stays flat and files stay within keep-K."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceswap_lite.runfolder import step_checkpoints
from faceswap_lite.train.checkpoint import load_checkpoint
from tools.synthetic_faces import make_face_set

from ..helpers import TINY_MODEL, sets

STEPS = 1500
KEEP = 3


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux)")
def test_long_run_memory_flat_files_bounded(tmp_path):
    faces = tmp_path / "faces"
    make_face_set(faces, 8, size=64, seed=0)
    run = tmp_path / "run"
    args = [*TINY_MODEL, "data.batch_size=2", "data.workers=0", f"train.steps={STEPS}",
            "train.save_every=5", f"train.keep={KEEP}", "train.log_every=25", "train.preview_every=250",
            "train.eval_every=250", "loss.0.name=mae", "loss.1.weight=0"]
    cmd = [str(Path(sys.executable).parent / "faceswap-lite"), "train", "-A", str(faces), "-o", str(run),
           *sets(args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    samples: list[tuple[int, float]] = []  # (checkpointed step, RSS MB)
    while proc.poll() is None:
        time.sleep(0.5)
        rss = rss_mb(proc.pid)
        steps = step_checkpoints(run / "checkpoints")
        if rss is not None and steps:
            samples.append((steps[-1][0], rss))
        assert len(steps) <= KEEP + 1, f"{len(steps)} step checkpoints kept with keep={KEEP}"
    assert proc.returncode == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == STEPS
    assert [s for s, _ in step_checkpoints(run / "checkpoints")] == [STEPS - 10, STEPS - 5, STEPS]
    assert not list((run / "checkpoints").glob(".*"))
    assert len(list((run / "tb").glob("events.*"))) == 1
    early = [r for s, r in samples if STEPS * 0.2 <= s <= STEPS * 0.4]
    late = [r for s, r in samples if s >= STEPS * 0.8]
    assert len(early) >= 3 and len(late) >= 3, samples
    growth = statistics.median(late) - statistics.median(early)
    print(f"RSS early {statistics.median(early):.1f} MB, late {statistics.median(late):.1f} MB")
    assert growth < 25.0, f"memory grew by {growth:.1f} MB over the run"
