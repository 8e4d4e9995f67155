"""Issue 9 through the CLI: masks, exact skips, resume applying the config, roll back instead of a stop."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import textwrap

import numpy as np
import pytest
import torch

from faceswap_lite.runfolder import read_scalars
from faceswap_lite.train import step
from faceswap_lite.train.checkpoint import load_checkpoint
from tools.synthetic_faces import make_face_set

from ..helpers import run_cli, sets
from .test_train import TINY

QUIET = ["train.log_every=50", "train.eval_every=1000", "train.preview_every=1000", "train.save_every=1000"]

PLUGINS = textwrap.dedent('''
    import torch
    from faceswap_lite.registry import register_loss

    class _BadCalls(torch.nn.Module):
        """A loss that misbehaves on training calls first..last (1-based; validation and the size
        check do not count)."""
        output = "item"
        def __init__(self, first: int = 0, last: int = -1):
            super().__init__()
            self.first, self.last, self.calls = first, last, 0
        def bad_call(self):
            """Count this call if it trains; True when it is one of first..last."""
            if torch.is_grad_enabled():
                self.calls += 1
            return self.first <= self.calls <= self.last

    @register_loss("nan_stretch")
    class NaNStretch(_BadCalls):
        """MAE, NaN on training calls first..last."""
        def forward(self, pred, target):
            v = (pred - target).abs().flatten(1).mean(1)
            return v * float("nan") if self.bad_call() else v

    @register_loss("nan_grad")
    class NaNGrad(_BadCalls):
        """A finite loss (0) whose gradient is infinite on training calls first..last."""
        def forward(self, pred, target):
            if self.bad_call():
                return torch.sqrt((pred - pred.detach()).abs()).flatten(1).mean(1)  # 0, d/dx = inf
            return (pred - target).abs().flatten(1).mean(1) * 0

    @register_loss("fill_probe")
    class FillProbe(torch.nn.Module):
        """Mean of the target the mix hands over in the right quarter of the crop."""
        output = "item"
        def forward(self, pred, target):
            return target[..., 3 * target.shape[-1] // 4:].flatten(1).mean(1) + 0 * pred.flatten(1).mean(1)
''')


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    make_face_set(root / "A", 10, size=96, seed=0)
    (root / "plugins").mkdir()
    (root / "plugins" / "probes.py").write_text(PLUGINS)
    return root


def train_args(faces, run, extra, plugins=True):
    return (["train", "-A", str(faces / "A"), "-o", str(run)] + (["--plugins-dir", str(faces / "plugins")]
            if plugins else []) + sets(TINY + QUIET + extra))


def test_mask_face_off_never_trains_the_fill(faces, tmp_path):
    """mask.face = false: the plane is the valid image area, so fill pixels reach no loss."""
    half = np.array([[-0.5, -0.5], [47.5, -0.5], [47.5, 95.5], [-0.5, 95.5]], np.float32)  # left half is image
    make_face_set(tmp_path / "F", 4, size=96, seed=1, valid_polygon=half)
    run = tmp_path / "run"
    still = ["augment.rotation=0", "augment.scale=0", "augment.shift=0", "augment.flip=0", "augment.warp=0"]
    run_cli(["train", "-A", str(tmp_path / "F"), "-o", str(run), "--plugins-dir", str(faces / "plugins"),
             *sets(TINY + still + ["train.steps=1", "mask.face=false", "loss.1.name=fill_probe", "loss.1.weight=0",
                                   "data.val_fraction=0"])])
    assert read_scalars(run)["loss/a/fill_probe"][0][1] == 0.0


def test_loss_too_big_for_the_faces_is_one_line_before_anything(faces, tmp_path):
    cfg = tmp_path / "ms.toml"
    cfg.write_text('[[loss]]\nname = "ms_ssim"\nweight = 1.0\n')  # 5 scales of an 11 px window at 64 px
    run = tmp_path / "run"
    res = run_cli(["train", "-A", str(faces / "A"), "-o", str(run), "-c", str(cfg), *sets(TINY)], expect=2)
    err = res.output.strip().splitlines()[-1]
    assert err.startswith("Error: loss 'ms_ssim' cannot run on the model's 64×64 faces") and "model.resolution" in err
    assert not run.exists()


def test_resume_applies_optimizer_settings_and_keeps_the_split(faces, tmp_path, caplog):
    A = tmp_path / "A"
    shutil.copytree(faces / "A", A)
    run = tmp_path / "run"
    base = ["train", "-A", str(A), "-o", str(run)]
    run_cli(base + sets(TINY + QUIET + ["train.steps=2", "data.val_fraction=0.2"]))
    first = json.loads((run / "split.json").read_text())["a"]
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["geometry"] == {"a": {"size": 96, "padding": 0.0, "centering": 0.0}}
    assert first["val"] and first["train_count"] + len(first["val"]) == 10

    # Faces added and deleted between the runs: nothing moves across.
    trained = sorted({p.name for p in A.glob("*.png")} - set(first["val"]))
    (A / trained[0]).unlink()
    make_face_set(A, 3, size=96, seed=5, prefix="new")
    with caplog.at_level(logging.INFO, logger="faceswap_lite"):
        run_cli(base + ["--resume"] + sets(TINY + QUIET + [
            "train.steps=3", "data.val_fraction=0.2", "train.betas=[0.9, 0.99]", "train.optimizer=adamw",
            "train.weight_decay=0.01", "train.eps=1e-6"]))
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("resume: "))
    assert "train.betas (0.5, 0.999) -> (0.9, 0.99)" in line and "train.optimizer 'adam' -> 'adamw'" in line
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    group = state["optimizer"]["param_groups"][0]
    assert group["betas"] == (0.9, 0.99) and group["eps"] == 1e-6 and group["weight_decay"] == 0.01
    assert group["decoupled_weight_decay"] is True
    assert int(state["optimizer"]["state"][0]["step"]) == 3  # the moments were kept, not restarted
    second = json.loads((run / "split.json").read_text())["a"]
    assert set(first["val"]) <= set(second["val"])  # every held-out face is still held out
    assert not set(second["val"]) & set(trained)  # no trained face moved into validation
    assert second["train_count"] + len(second["val"]) == 12


def test_nan_stretch_rolls_back_with_a_lower_lr_and_resume_keeps_it(faces, tmp_path, caplog):
    run = tmp_path / "run"
    # Both losses NaN on training calls 4..10 (7 steps); 5 in a row trigger a roll back at step 8,
    # exactly when the streak reaches the limit (the old loop looked every 5 steps, saw it at step 10
    # and stopped the run).
    nan = ["loss.0.name=nan_stretch", "loss.0.first=4", "loss.0.last=10",
           "loss.1.name=nan_stretch", "loss.1.first=4", "loss.1.last=10", "train.max_nonfinite=5",
           "train.steps=12", "train.log_every=50"]
    with caplog.at_level(logging.INFO, logger="faceswap_lite"):
        res = run_cli(train_args(faces, run, nan))
    assert "Training finished at step 12" in res.output
    text = caplog.text
    assert "rolled back from step 8 to step 0" in text and "lr 0.001 -> 0.0005" in text
    # Steps are counted, not loss components (two NaN components, five steps).
    assert "non-finite loss from a/nan_stretch, a/nan_stretch_2: 5 step(s) skipped up to step 8" in text
    tags = read_scalars(run)
    assert tags["train/rollbacks"] == [(8, 1.0)]
    assert tags["lr"][-1] == (12, pytest.approx(0.5e-3))
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["lr_scale"] == 0.5 and state["rollbacks"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())

    run_cli(train_args(faces, run, nan[:-2] + ["train.steps=13", "train.log_every=1"]))
    assert read_scalars(run)["lr"][-1] == (13, pytest.approx(0.5e-3))


def test_saves_inside_a_skip_streak_leave_last_pt_the_last_good_checkpoint(faces, tmp_path):
    """NaN from training call 3 on, a save every step: steps 1-2 save, steps 3-4 (a streak) do not,
    and the stop after max_rollbacks names last.pt, which holds step 2 (the last healthy step)."""
    run = tmp_path / "run"
    res = run_cli(train_args(faces, run, [
        "train.steps=20", "train.save_every=1", "train.keep=10", "train.max_nonfinite=2", "train.max_rollbacks=0",
        "loss.0.name=nan_stretch", "loss.0.first=3", "loss.0.last=1000", "loss.1.weight=0"]), expect=3)
    assert "stopped at step 4" in res.output and f"the last good checkpoint is {run / 'checkpoints' / 'last.pt'}" \
        in " ".join(res.output.split())
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step_*.pt")) == ["step_0000001.pt", "step_0000002.pt"]
    state = load_checkpoint(ckpts / "last.pt")
    assert state["step"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_nonfinite_gradient_reported_and_skipped_without_fused_adam(faces, tmp_path, caplog, monkeypatch):
    """mps/xpu have no fused Adam: the skip flag is read back there instead of crashing the first step."""
    monkeypatch.setattr(step, "fused_adam_supported", lambda device: False)
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="faceswap_lite"):
        run_cli(train_args(faces, run, ["train.steps=4", "train.log_every=4", "loss.1.name=nan_grad",
                                        "loss.1.first=2", "loss.1.last=3"]))
    assert "non-finite gradient: 2 step(s) skipped up to step 4" in caplog.text
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert state["optimizer"]["param_groups"][0]["fused"] is False
    assert int(state["optimizer"]["state"][0]["step"]) == 2  # 4 steps, 2 skipped


def test_interrupt_right_after_the_optimizer_step_saves_an_honest_step(faces, tmp_path, monkeypatch):
    """Ctrl-C landing between the weight update and the step counter: the checkpoint's step is the
    number of updates its weights have taken."""
    adam_step = torch.optim.Adam.step
    calls = {"n": 0}

    def step_then_interrupt(self, *a, **k):
        out = adam_step(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_interrupt)
    run = tmp_path / "run"
    run_cli(train_args(faces, run, ["train.steps=10"], plugins=False), expect=130)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 3 == int(state["optimizer"]["state"][0]["step"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 (GradScaler) needs a CUDA GPU")
def test_fp16_nonfinite_loss_leaves_the_weights_alone(faces, tmp_path):
    """Under fp16 the loss flag reaches GradScaler: Adam's momentum does not move skipped steps."""
    run = tmp_path / "run"
    run_cli(train_args(faces, run, ["train.steps=3", "train.save_every=1", "train.keep=5", "train.device=cuda",
                                    "train.precision=fp16", "loss.0.name=nan_stretch", "loss.0.first=2",
                                    "loss.0.last=3", "loss.1.weight=0"]))
    one = load_checkpoint(run / "checkpoints" / "step_0000001.pt")["model"]
    three = load_checkpoint(run / "checkpoints" / "step_0000003.pt")["model"]
    assert all(torch.equal(one[k], three[k]) for k in one)
