"""The training engine end to end through the real CLI: outputs, resume, previews, bad input, NaN, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from faceswap_lite.cli import main
from faceswap_lite.runfolder import read_scalars, step_checkpoints
from faceswap_lite.train.checkpoint import load_checkpoint
from faceswap_lite.train.preview import HEADER
from tools.synthetic_faces import make_face_set

from ..helpers import TINY_MODEL, TINY_SAE, run_cli, sets

TINY_RUN = ["data.batch_size=4", "data.workers=0",
            "train.log_every=1", "train.eval_every=2", "train.preview_every=2", "train.save_every=2",
            "train.preview_faces=3", "train.lr=1e-3", "train.warmup_steps=0", "train.drops=[]"]
TINY = [*TINY_MODEL, *TINY_RUN]
SAE_TINY = TINY_SAE
MODELS_TINY = {"original": TINY_MODEL, "sae-df": SAE_TINY + ["model.arch=df"],
               "sae-liae": SAE_TINY + ["model.arch=liae"]}
ALL_LOSSES = textwrap.dedent("""
    [[loss]]
    name = "mae"
    weight = 1.0
    [[loss]]
    name = "ssim"
    weight = 1.0
    [[loss]]
    name = "ms_ssim"
    weight = 0.5
    window_size = 3
    scales = 3
    [[loss]]
    name = "lpips"
    weight = 0.1
    pretrained_trunk = false
    [[loss]]
    name = "ffl"
    weight = 1.0
    [[loss]]
    name = "gmsd"
    weight = 0.5
    [[loss]]
    name = "lpl"
    weight = 1.0
""")


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """The run's scalars read back with tensorboard's own reader (EventAccumulator), by step."""
    return read_scalars(run)


def test_two_sides_all_losses_outputs(faces, tmp_path):
    cfg = tmp_path / "all.toml"
    cfg.write_text(ALL_LOSSES)
    run = tmp_path / "run"
    res = run_cli(["train", "-A", str(faces / "A"), "-B", str(faces / "B"), "-o", str(run), "-c", str(cfg),
                   *sets(TINY + ["train.steps=4"])])
    assert "Training finished at step 4" in res.output

    tags = scalars(run)
    names = ["mae", "ssim", "ms_ssim", "lpips", "ffl", "gmsd", "lpl"]
    want = {"loss/total", "lr", "perf/faces_per_sec", "val/a/psnr", "val/a/ssim", "val/b/psnr", "val/b/ssim"}
    want |= {f"loss/{s}/{n}" for s in "ab" for n in names} | {f"loss_weighted/{s}/{n}" for s in "ab" for n in names}
    assert want <= set(tags), want - set(tags)
    assert [s for s, _ in tags["loss/total"]] == [1, 2, 3, 4]
    assert all(np.isfinite(v) for _, v in tags["loss/total"])
    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0})
    acc.Reload()
    assert "preview" in acc.Tags()["images"]

    # Checkpoints reload with weights_only and hold everything needed to resume.
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 4 and set(state) >= {"model", "optimizer", "config", "rng", "metrics", "model_spec"}
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in state["model"])
    assert [s for s, _ in step_checkpoints(run / "checkpoints")] == [2, 4]

    # Preview grid: header + 3 rows of 64 px; columns A, A->A, A->B, B, B->B, B->A.
    img = Image.open(run / "previews" / "latest.png")
    assert img.size == (6 * 64, HEADER + 3 * 64)
    assert (run / "previews" / "step_0000002.png").exists()
    assert "[[loss]]" in (run / "config.toml").read_text()


@pytest.mark.parametrize("family", list(MODELS_TINY))
def test_resume_gives_same_losses(faces, tmp_path, family):
    base = ["train", "-A", str(faces / "A"), "-B", str(faces / "B")]
    args = MODELS_TINY[family] + TINY_RUN + ["train.steps=6", "train.drops=[[3, 0.5]]", "augment.warp=1.0"]
    run_cli(base + ["-o", str(tmp_path / "straight"), *sets(args)])
    run_cli(base + ["-o", str(tmp_path / "resumed"), *sets(args + ["train.steps=3"])])
    run_cli(base + ["-o", str(tmp_path / "resumed"), "--resume", *sets(args)])
    a = scalars(tmp_path / "straight")
    b = scalars(tmp_path / "resumed")
    assert [s for s, _ in b["loss/total"]] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([v for _, v in b["loss/total"]], [v for _, v in a["loss/total"]], rtol=1e-5)
    np.testing.assert_allclose([v for _, v in b["lr"]], [v for _, v in a["lr"]])
    assert a["lr"][3][1] == pytest.approx(0.5e-3)  # the drop at step 3 (logged after step 4)
    if family.startswith("sae"):  # the mask term is part of what resumes exactly
        np.testing.assert_allclose([v for _, v in b["loss/b/mask"]], [v for _, v in a["loss/b/mask"]], rtol=1e-5)


def test_bad_inputs_are_one_line_errors(faces, tmp_path):
    A = str(faces / "A")
    cases = [
        (["-A", str(tmp_path / "missing")], "does not exist"),
        (["-A", str(tmp_path)], "holds no face PNGs"),
        (["-A", A, "--set", "train.lr_rate=1"], "did you mean 'lr'"),
        (["-A", A, "--set", "train.steps=many"], "train.steps must be int"),
        (["-A", A, "--set", "loss.0.name=ssimm"], "unknown loss 'ssimm'; did you mean 'ssim'"),
        (["-A", A, "--set", "model.name=orignal"], "unknown model 'orignal'; did you mean 'original'"),
        (["-A", A, "--set", "model.widht=0.5"], "did you mean 'width'"),
    ]
    (tmp_path / "empty").mkdir()
    for extra, msg in cases:
        extra = [str(tmp_path / "empty") if e == str(tmp_path) else e for e in extra]
        res = CliRunner().invoke(main, ["train", *extra, "-o", str(tmp_path / "r"), *sets(TINY)])
        assert res.exit_code != 0, extra
        err = res.output.strip().splitlines()[-1]
        assert err.startswith("Error: ") and msg in err, (extra, res.output)
        assert not (tmp_path / "r" / "checkpoints").exists()


def test_incompatible_checkpoint_refused_nothing_overwritten(faces, tmp_path):
    run = tmp_path / "run"
    run_cli(["train", "-A", str(faces / "A"), "-o", str(run), *sets(TINY + ["train.steps=2"])])
    before = (run / "checkpoints" / "last.pt").read_bytes()
    res = CliRunner().invoke(main, ["train", "-A", str(faces / "A"), "-o", str(run), "-c", str(run / "config.toml"),
                                    *sets(TINY + ["train.steps=4", "model.width=0.0625"])])
    assert res.exit_code != 0 and "incompatible model" in res.output
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_corrupt_faces_skipped_and_counted(faces, tmp_path):
    import shutil

    from tools.synthetic_faces import write_bad_files

    mixed = tmp_path / "mixed"
    shutil.copytree(faces / "A", mixed)
    bad = write_bad_files(mixed, size=96)
    n_bad = sum(len(v) for v in bad.values())
    res = run_cli(["train", "-A", str(mixed), "-o", str(tmp_path / "run"), *sets(TINY + ["train.steps=2"])])
    assert "Training finished at step 2" in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Warning: side a: skipped ")]
    assert sum(int(ln.split("skipped ")[1].split()[0]) for ln in lines) == n_bad
    assert {ln.split(": ")[-1] for ln in lines} == set(bad)


NAN_PLUGIN = textwrap.dedent("""
    import torch
    from faceswap_lite.registry import register_loss

    @register_loss("sometimes_nan")
    class SometimesNaN(torch.nn.Module):
        \"\"\"MAE that returns NaN when the prediction's mean is in a band (data-dependent, no host sync).\"\"\"
        output = "item"
        def __init__(self, every: int = 0):
            super().__init__()
            self.every = every
            self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        def forward(self, pred, target):
            self.calls += 1
            v = (pred - target).abs().flatten(1).mean(1)
            if self.every == 0:
                return v * float("nan")
            bad = (self.calls % self.every) == 0
            return torch.where(bad, torch.full_like(v, float("nan")), v)
""")


def test_nonfinite_steps_skipped_then_stop(faces, tmp_path, caplog):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "nan_loss.py").write_text(NAN_PLUGIN)
    # Every 3rd call is NaN (side a and b each call once per step): skipped and named, training goes on.
    run = tmp_path / "run"
    res = run_cli(["train", "-A", str(faces / "A"), "-o", str(run), "--plugins-dir", str(plugins),
                   *sets(TINY + ["train.steps=6", "loss.0.name=sometimes_nan", "loss.0.every=3", "loss.1.weight=0"])])
    assert "Training finished at step 6" in res.output
    assert "non-finite loss from a/sometimes_nan" in caplog.text
    before = load_checkpoint(run / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in before["model"].values())

    # Always NaN: stops after max_nonfinite in a row; the last good checkpoint is intact.
    last = (run / "checkpoints" / "last.pt").read_bytes()
    res = CliRunner().invoke(main, ["train", "-A", str(faces / "A"), "-o", str(run), "--plugins-dir", str(plugins),
                                    *sets(TINY + ["train.steps=20", "loss.0.name=sometimes_nan", "loss.0.every=0",
                                                  "loss.1.weight=0", "train.max_nonfinite=3", "train.save_every=100"])])
    assert res.exit_code == 3, res.output
    assert "3 non-finite steps in a row" in res.output
    assert (run / "checkpoints" / "last.pt").read_bytes() == last


def test_ctrl_c_saves_and_exits(faces, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "faceswap_lite", "train", "-A", str(faces / "A"), "-o", str(run),
           *sets(TINY + ["train.steps=100000", "train.save_every=100000", "train.preview_every=100000",
                         "train.eval_every=100000"])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:  # wait until a few steps have run
        seen.append(line)
        if "step 3/" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    out = "".join(seen) + out
    assert proc.returncode == 130, out
    assert "interrupted (checkpoint saved)" in out
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] > 0


@pytest.mark.slow
def test_ddp_two_processes(faces, tmp_path):
    """SAE liae with its learned mask: every parameter, the mask branches too, gets a gradient each step
    (DDP's find_unused_parameters=False would fail otherwise)."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "faceswap_lite", "train", "-A", str(faces / "A"), "-B", str(faces / "B"), "-o", str(run),
           *sets(TINY_RUN + MODELS_TINY["sae-liae"] + ["train.steps=4", "train.device=cpu"])]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 4
    # Rank 0 alone writes: one event file, one set of previews.
    assert len(list((run / "tb").glob("events.*"))) == 1
    assert res.stdout.count("Training finished at step 4") == 1
    assert all(np.isfinite(v) for _, v in scalars(run)["loss/a/mask"])


def test_preview_command_on_trained_run(faces, tmp_path):
    run = tmp_path / "run"
    run_cli(["train", "-A", str(faces / "A"), "-B", str(faces / "B"), "-o", str(run), *sets(TINY + ["train.steps=2"])])
    out = tmp_path / "grid.png"
    res = run_cli(["preview", str(run), "-n", "2", "-o", str(out)])
    assert "sides A, B, checkpoint step 2" in res.output
    assert Image.open(out).size == (6 * 64, HEADER + 2 * 64)
    # Faces the model has not seen, and an explicit checkpoint file.
    other = tmp_path / "other"
    make_face_set(other, 3, size=80, seed=7)
    run_cli(["preview", str(run), "-A", str(other), "-B", str(other), "--checkpoint",
             str(run / "checkpoints" / "step_0000002.pt"), "-n", "3", "-o", str(out)])
    img = np.asarray(Image.open(out))
    assert img.shape == (HEADER + 3 * 64, 6 * 64, 3)
    # Column A shows the unseen faces themselves (not blank).
    assert img[HEADER:, :64].std() > 10
    res = CliRunner().invoke(main, ["preview", str(tmp_path / "nowhere"), "-o", str(out)])
    assert res.exit_code != 0 and "no checkpoint" in res.output


def test_bench_train_runs_tiny(tmp_path):
    out = tmp_path / "bench.md"
    cmd = [sys.executable, "tools/bench_train.py", "--batch", "2", "--faces", "6", "--steps", "1", "--repeats", "1",
           "--warmup", "1", "--width", "0.03125", "--workers", "0", "--presets", "original", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr
    assert "| original (64 px)" in out.read_text()
