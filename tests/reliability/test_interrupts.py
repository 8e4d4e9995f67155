"""Ctrl-C while a checkpoint is being written: the file is finished, then the run stops (exit 130).

The trainer runs in a real process whose ``torch.save`` writes slowly (the second write of every
save sleeps, after leaving a marker with the step it saves), so a SIGINT lands inside torch's zip
writer, the moment that used to end in torch's ``unexpected pos`` error instead of a checkpoint.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from faceswap_lite.train.checkpoint import load_checkpoint

from ..helpers import TINY_MODEL, sets

# The real CLI in a process whose torch.save writes slowly: argv = marker file, then the CLI's args.
SLOW_SAVE = """
import sys, time, pathlib, torch
marker = pathlib.Path(sys.argv[1])
real_save = torch.save

class SlowFile:
    # A file whose second write waits: a signal then arrives inside torch's zip writer, after its
    # first record (where a KeyboardInterrupt there became torch's "unexpected pos" RuntimeError).
    def __init__(self, fh, step):
        self.fh, self.step, self.writes = fh, step, 0
    def write(self, data):
        self.writes += 1
        if self.writes == 2:
            marker.write_text(str(self.step))
            time.sleep(1.5)
        return self.fh.write(data)
    def flush(self):
        self.fh.flush()

def slow_save(obj, f, *args, **kwargs):
    return real_save(obj, SlowFile(f, obj.get("step")), *args, **kwargs)

torch.save = slow_save
from faceswap_lite.cli import main
main(sys.argv[2:], prog_name="faceswap-lite")
"""

RUN = [*TINY_MODEL, "data.batch_size=2", "data.workers=0", "train.steps=100000", "train.log_every=1",
       "train.preview_every=100000", "train.eval_every=100000", "train.warmup_steps=0", "train.drops=[]"]


def start_slow_training(faces: Path, run: Path, marker: Path, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-c", SLOW_SAVE, str(marker), "train", "-A", str(faces), "-o", str(run),
           *sets(RUN + extra)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 120.0) -> int:
    """The step the process has begun to save (the marker's text), once it appears."""
    end = time.monotonic() + timeout
    while not (marker.exists() and marker.read_text()):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < end, "the training never began a checkpoint"
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the 1.5 s write
    return int(marker.read_text())


def wait_for_line(proc: subprocess.Popen, text: str) -> list[str]:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError("the training ended before " + repr(text) + ":\n" + "".join(seen))


def test_ctrl_c_during_a_periodic_save_finishes_it_then_exits(faces, tmp_path):
    run, marker = tmp_path / "run", tmp_path / "saving"
    proc = start_slow_training(faces, run, marker, ["train.save_every=3"])
    step = wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Traceback" not in out, out
    assert f"interrupted (checkpoint saved) at step {step}" in out, out
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == step == 3
    assert load_checkpoint(run / "checkpoints" / "step_0000003.pt")["step"] == 3
    assert not list((run / "checkpoints").glob(".*.tmp"))


def test_second_ctrl_c_during_the_interrupt_save_does_not_cut_it(faces, tmp_path):
    run, marker = tmp_path / "run", tmp_path / "saving"
    proc = start_slow_training(faces, run, marker, ["train.save_every=100000"])
    wait_for_line(proc, "step 2/")
    proc.send_signal(signal.SIGINT)  # between saves: the interrupt save begins
    step = wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)  # a second Ctrl-C while it writes
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Traceback" not in out, out
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == step >= 2
    assert not list((run / "checkpoints").glob(".*.tmp"))
