"""The learning-rate finder, ``--minutes`` and ``--until``, through the real CLI on real checkpoints."""

from __future__ import annotations

import csv
import math

import torch
from PIL import Image

from faceswap_lite.runfolder import RunFolder
from faceswap_lite.train.checkpoint import load_checkpoint

from ..helpers import TINY_MODEL, run_cli, sets

RUN = ["train.warmup_steps=0", "train.log_every=5", "train.eval_every=1000", "train.preview_every=1000",
       "train.save_every=1000", "data.workers=0"]


def train(faces, run, *extra: str, expect: int | None = 0, args=()):
    return run_cli(["train", "-A", str(faces / "A"), "-o", str(run), *args, *sets([*TINY_MODEL, *RUN, *extra])],
                   expect=expect)


def read_sweep(run) -> list[dict[str, float]]:
    with open(RunFolder(run).lr_find_csv, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def test_lr_find_sweeps_writes_csv_and_png_and_trains_nothing(faces, tmp_path):
    run = tmp_path / "run"
    res = train(faces, run, "train.lr_find_steps=40", "train.lr_find_end=10.0", args=["--lr-find"])
    assert "suggested:" in res.output and "steepest descent" in res.output
    rows = read_sweep(run)
    assert 10 <= len(rows) <= 40
    lrs = [r["lr"] for r in rows]
    assert lrs[0] == 1e-6 and all(b > a for a, b in zip(lrs, lrs[1:]))  # exponential, increasing
    assert math.isclose(lrs[1] / lrs[0], (10.0 / 1e-6) ** (1 / 39), rel_tol=1e-3)
    # A minimum inside the range (the loss falls, then rises past ~1e-2 on this model).
    smoothed = [r["smoothed"] for r in rows]
    low = min(range(len(rows)), key=lambda i: smoothed[i])
    assert 0 < low < len(rows) - 1 and smoothed[low] < smoothed[0] and smoothed[-1] > smoothed[low]
    assert f"{lrs[low] / 10:.2e}" in res.output
    assert Image.open(RunFolder(run).lr_find_png).size[0] > 100
    folder = RunFolder(run)
    assert not folder.checkpoints.exists() and not folder.config.exists() and not folder.split.exists()


NAN_LOSS = """
import torch
from torch import nn
from faceswap_lite.losses import MAP
from faceswap_lite.registry import register_loss

@register_loss("diverges")
class Diverges(nn.Module):
    \"\"\"MAE that turns NaN from its 15th call on: a run that diverges.\"\"\"
    output = MAP

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, pred, target):
        self.calls += 1
        d = (pred.float() - target.float()).abs()
        return d * float("nan") if self.calls >= 15 else d
"""


def test_the_sweep_stops_cleanly_at_a_nan(faces, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "diverges.py").write_text(NAN_LOSS)
    run = tmp_path / "run"
    res = train(faces, run, "train.lr_find_steps=40", "loss=[{name='diverges', weight=1.0}]",
                args=["--lr-find", "--plugins-dir", str(plugins)])
    assert "(non-finite loss)" in res.output
    rows = read_sweep(run)
    assert len(rows) < 40 and math.isnan(rows[-1]["loss"]) and all(math.isfinite(r["loss"]) for r in rows[:-1])


def test_a_run_after_the_sweep_equals_one_that_never_swept(faces, tmp_path):
    swept, plain = tmp_path / "swept", tmp_path / "plain"
    train(faces, swept, "train.lr_find_steps=12", args=["--lr-find"])
    train(faces, swept, "train.steps=6")
    train(faces, plain, "train.steps=6")
    a, b = load_checkpoint(swept / "checkpoints" / "last.pt"), load_checkpoint(plain / "checkpoints" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_lr_auto_sweeps_then_trains_with_the_suggestion(faces, tmp_path):
    run = tmp_path / "run"
    res = train(faces, run, "train.steps=4", "train.lr_find_steps=20", "train.lr=auto")
    said = next(line for line in res.output.splitlines() if line.startswith("train.lr = auto"))
    lr = float(said.split("train.lr = ")[2].split()[0])
    assert 1e-7 <= lr <= 1e-2
    assert load_checkpoint(run / "checkpoints" / "last.pt")["config"]["train"]["lr"] == lr
    assert f"lr = {lr}" in (run / "config.toml").read_text().replace("lr = 0.", "lr = 0.")


def test_lr_find_bad_inputs_write_nothing(faces, tmp_path):
    run = tmp_path / "run"
    for extra, words in ((["train.lr_find_start=1e-2", "train.lr_find_end=1e-6"], "end above the start"),
                         (["train.lr_find_start=0"], "must be > 0")):
        res = train(faces, run, *extra, args=["--lr-find"], expect=2)
        assert words in res.output and not run.exists()
    train(faces, run, "train.steps=2")
    res = train(faces, run, args=["--lr-find"], expect=2)
    assert "already holds one" in res.output and not RunFolder(run).lr_find_csv.exists()


def test_until_stops_at_the_step_with_a_checkpoint_and_refuses_the_past(faces, tmp_path):
    run = tmp_path / "run"
    train(faces, run, "train.steps=50", args=["--until", "4"])
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 4 and "val/a/psnr" in state["metrics"]
    assert (run / "previews" / "step_0000004.png").is_file()
    res = train(faces, run, "train.steps=50", args=["--until", "3"], expect=2)
    assert "already at step 4" in res.output


def test_minutes_stops_at_the_budget_saved(faces, tmp_path):
    run = tmp_path / "run"
    res = train(faces, run, "train.steps=100000", args=["--minutes", "0.05"])
    assert "stopped at the --minutes 0.05 budget" in res.output
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert 0 < state["step"] < 100000 and "val/a/psnr" in state["metrics"]
    assert train(faces, tmp_path / "r2", args=["--minutes", "0"], expect=2).exit_code == 2


def test_ema_resumes_exactly_is_validated_and_used_by_preview(faces, tmp_path):
    """train.ema: the average is saved, resumes bit-exactly, logs val_ema/..., and preview uses it
    unless --raw-weights."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    ema = ["train.ema=0.8", "train.eval_every=3"]
    train(faces, straight, *ema, "train.steps=6")
    train(faces, split, *ema, "train.steps=3")
    train(faces, split, *ema, "train.steps=6")
    a, b = load_checkpoint(straight / "checkpoints" / "last.pt"), load_checkpoint(split / "checkpoints" / "last.pt")
    assert a["ema"].keys() == a["model"].keys()
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k
    assert any(not torch.equal(a["ema"][k], a["model"][k]) for k in a["model"])
    assert "val_ema/a/psnr" in a["metrics"] and "val/a/psnr" in a["metrics"]
    run_cli(["preview", str(straight), "-o", str(tmp_path / "ema.png"), "-n", "2"])
    run_cli(["preview", str(straight), "-o", str(tmp_path / "raw.png"), "-n", "2", "--raw-weights"])
    assert Image.open(tmp_path / "ema.png").tobytes() != Image.open(tmp_path / "raw.png").tobytes()


def test_ema_outside_its_range_is_one_line(faces, tmp_path):
    for value in ("1.0", "-0.1"):
        res = train(faces, tmp_path / "run", f"train.ema={value}", expect=2)
        assert "train.ema must be" in res.output and not (tmp_path / "run").exists()
