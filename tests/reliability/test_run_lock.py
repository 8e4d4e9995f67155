"""One writer per folder: a second train, a compare or a demo into a run folder being trained stops
at once with one line naming the training's pid, and a killed training leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from faceswap_lite.train.checkpoint import latest_checkpoint

from ..helpers import TINY_MODEL, run_cli, sets

RUN = [*TINY_MODEL, "data.batch_size=2", "data.workers=0", "train.log_every=1", "train.save_every=1",
       "train.preview_every=100000", "train.eval_every=100000", "train.warmup_steps=0", "train.drops=[]"]


def train_args(faces: Path, run: Path, extra: list[str] = ()) -> list[str]:
    return ["train", "-A", str(faces), "-o", str(run), *sets(RUN + list(extra))]


def start_training(faces: Path, run: Path) -> subprocess.Popen:
    """A real training process, returned once it has trained (and saved) a step or two."""
    cmd = [sys.executable, "-m", "faceswap_lite", *train_args(faces, run, ["train.steps=100000"])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "step 2/" in line:
            return proc
    raise AssertionError("the training ended before its second step:\n" + "".join(seen))


def snapshot(run: Path) -> tuple[dict[str, bytes], list[str]]:
    """What a second writer would change first: the config and the split (rewritten), and the event
    files (a new one; the running training appends to its own)."""
    return ({p: (run / p).read_bytes() for p in ("config.toml", "split.json")},
            sorted(p.name for p in (run / "tb").iterdir()))


def one_line_naming(res, pid: int) -> str:
    line = res.output.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, res.output
    assert f"is in use: process {pid} is writing" in line, line
    return line


def test_a_second_writer_is_refused_while_a_run_trains(faces, tmp_path):
    run = tmp_path / "run"
    proc = start_training(faces, run)
    try:
        before = snapshot(run)
        res = run_cli(train_args(faces, run, ["train.steps=3"]), expect=2)  # (short, were it let in)
        line = one_line_naming(res, proc.pid)
        assert str(run) in line
        res = run_cli(["compare", "-A", str(faces), "-o", str(run), "--mix", "m=mae:1", *sets(RUN)], expect=2)
        one_line_naming(res, proc.pid)
        res = run_cli(["demo", "-o", str(run), "--steps", "1", "--frames", "4"], expect=2)
        one_line_naming(res, proc.pid)
        assert not (run / "sample_clip.avi").exists()
        assert snapshot(run) == before  # the first run's files are its own
        assert proc.poll() is None  # and it trains on
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
    # The kernel dropped the killed process's lock: the run resumes.
    step = latest_checkpoint(run / "checkpoints")[1]["step"]
    res = run_cli(train_args(faces, run, [f"train.steps={step + 1}"]))
    assert f"Training finished at step {step + 1}" in res.output, res.output
    assert (run / ".lock").read_text() == str(os.getpid())  # the lock file names the last writer


def test_a_failed_check_into_a_new_folder_writes_nothing(faces, tmp_path):
    """The lock of a new run folder is taken just before the first write: a check failing before
    it leaves no folder (and no lock file) behind."""
    run = tmp_path / "run"
    res = run_cli(train_args(faces, run, ["train.steps=2", "model.name=nope"]), expect=2)
    assert "nope" in res.output and not run.exists()
