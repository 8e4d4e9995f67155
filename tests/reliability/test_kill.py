"""kill -9 at random moments of a training run, checkpoint writes included: it always resumes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceswap_lite.runfolder import step_checkpoints
from faceswap_lite.train.checkpoint import latest_checkpoint, load_checkpoint
from tools.synthetic_faces import make_face_set

from ..helpers import TINY_MODEL, sets

KILLS = 20
ARGS = [*TINY_MODEL, "data.batch_size=2", "data.workers=0", "train.steps=100000",
        "train.save_every=1", "train.keep=2", "train.log_every=1", "train.preview_every=7", "train.eval_every=1000",
        "loss.0.name=mae", "loss.1.weight=0"]


@pytest.mark.slow
def test_kill_9_twenty_times(tmp_path):
    faces = tmp_path / "faces"
    make_face_set(faces, 6, size=64, seed=0)
    run = tmp_path / "run"
    exe = Path(sys.executable).parent / "faceswap-lite"
    cmd = [str(exe), "train", "-A", str(faces), "-o", str(run), *sets(ARGS)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(1234)
    last_step = 0
    resumed_from = []
    for i in range(KILLS):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        # Wait until it is stepping (or saving), then kill at a random moment.
        for line in proc.stdout:
            if "step " in line and "loss" in line:
                break
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        found = latest_checkpoint(run / "checkpoints")
        assert found is not None, f"kill {i}: no loadable checkpoint"
        path, state = found
        assert state["step"] >= last_step, f"kill {i}: step went back from {last_step} to {state['step']}"
        for _, p in step_checkpoints(run / "checkpoints"):
            load_checkpoint(p)  # every file left is whole
        resumed_from.append(state["step"])
        last_step = state["step"]
    assert last_step > 0
    assert len(set(resumed_from)) > 1, f"the runs never advanced: {resumed_from}"
    # A final clean resume finishes a short run from where the kills left it.
    final = cmd + ["--set", f"train.steps={last_step + 2}"]
    res = subprocess.run(final, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == last_step + 2
    assert not list((run / "checkpoints").glob(".*.tmp")), "temporary files left after a clean run"
