"""compare: two inline mixes for a few steps write every file with equal budgets and data order,
resume after an interrupt, and refuse bad input before training anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from ..helpers import run_cli, sets
from .conftest import PLUGINS, TINY

STEPS = 4
ROOT = Path(__file__).resolve().parents[2]


def compare_args(faces: Path, out: Path, mixes: list[str], extra: list[str] = (), two_sides: bool = True) -> list[str]:
    b = ["-B", str(faces / "B")] if two_sides else []
    args = ["compare", "-A", str(faces / "A"), *b, "-o", str(out), "--no-progress",
            "--plugins-dir", str(PLUGINS), *sets(TINY + [f"train.steps={STEPS}"]), *extra]
    for m in mixes:
        args += ["--mix", m]
    return args


@pytest.fixture(scope="module")
def compared(faces, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    out = root / "cmp"
    mixes = [f"mae=mae:1,record_batches:0:out={root / 'mae.pt'}",
             f"ssim_mae=ssim:1,mae:1,record_batches:0:out={root / 'ssim_mae.pt'}"]
    run_cli(compare_args(faces, out, mixes))
    return root, out


def test_compare_writes_every_file(compared):
    _, out = compared
    for name in ("report.md", "report.json", "grid.png", "curves.png", "compare.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert list(report["mixes"]) == ["mae", "ssim_mae"]
    for name, entry in report["mixes"].items():
        assert entry["status"] == "done" and entry["step"] == STEPS, name  # equal budgets
        for side in ("a", "b"):
            assert {"psnr", "ssim", "ms_ssim", "gmsd", "swap_id_target"} <= set(entry["metrics"][side])
        assert list((out / name / "tb").glob("events.out.tfevents.*"))  # side by side for `monitor DIR`
    text = (out / "report.md").read_text()
    assert "| `mae` |" in text and "| `ssim_mae` |" in text and "**" in text
    assert report["budget"] in text and "faceswap-lite compare" not in report["budget"]
    with Image.open(out / "grid.png") as grid:  # 4 blocks (A->A, A->B, B->B, B->A) by 3 columns
        assert grid.width == 3 * 96 and grid.height > 4 * 96
    with Image.open(out / "curves.png") as curves:
        assert curves.width > 400


def test_compare_mixes_see_the_same_data(compared):
    root, out = compared
    first, second = torch.load(root / "mae.pt"), torch.load(root / "ssim_mae.pt")
    assert len(first) == len(second) == 6
    assert any(t.shape[0] == 4 for t in first)  # training batches (batch_size 4) among the calls
    for x, y in zip(first, second):  # the first batches are identical
        assert torch.equal(x, y)
    a, b = (json.loads((out / n / "split.json").read_text()) for n in ("mae", "ssim_mae"))
    assert a == b


def test_compare_resumes_after_an_interrupt(faces, tmp_path):
    """Ctrl-C during the first mix, then the same command: both mixes end at the full budget."""
    out = tmp_path / "cmp"
    budget = sets(["train.steps=8", "train.save_every=2", "train.eval_every=4", "train.preview_every=8"])
    args = compare_args(faces, out, ["mae=mae:1", "ssim=ssim:1"], budget, two_sides=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "faceswap_lite", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpt = out / "mae" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 240
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    state = json.loads((out / "compare.json").read_text())
    assert state["mixes"]["mae"]["status"] == "pending" and 0 < state["mixes"]["mae"]["step"] < 8
    assert not (out / "ssim").exists()

    run_cli(args)
    report = json.loads((out / "report.json").read_text())
    assert [e["step"] for e in report["mixes"].values()] == [8, 8]
    assert all(e["status"] == "done" for e in report["mixes"].values())


@pytest.mark.parametrize("mixes, words", [
    (["x=mae:1", "x=ssim:1"], "used twice"),
    (["x=ssmi:1"], "did you mean 'ssim'"),
    (["x=lpips:0.1:nett=vgg"], "did you mean 'net'"),
    (["x=mae:heavy"], "not a number"),
])
def test_compare_bad_mixes(faces, tmp_path, mixes, words):
    res = run_cli(compare_args(faces, tmp_path / "cmp", mixes), expect=2)
    assert words in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "cmp").exists()  # nothing trained, nothing written


def test_compare_refuses_an_unrelated_folder(faces, tmp_path):
    out = tmp_path / "cmp"
    (out / "holiday_photos").mkdir(parents=True)
    res = run_cli(compare_args(faces, out, ["m=mae:1"]), expect=2)
    assert "not a compare folder" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and os.listdir(out) == ["holiday_photos"]


def test_compare_refuses_a_face_set_too_small_to_hold_out(faces, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    one = sorted((faces / "A").glob("*.png"))[0]
    (small / one.name).write_bytes(one.read_bytes())
    res = run_cli(["compare", "-A", str(small), "-o", str(tmp_path / "cmp"), "--mix", "m=mae:1"], expect=2)
    assert "too few for a held-out split" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "cmp").exists()


def test_a_failing_mix_is_reported_and_the_others_go_on(faces, tmp_path):
    """MS-SSIM's 5 scales do not fit 64-px faces: only training can tell, and only that mix fails."""
    out = tmp_path / "cmp"
    args = compare_args(faces, out, ["big=ms_ssim:1:scales=5", "mae=mae:1"], sets(["train.steps=2"]),
                        two_sides=False)
    run_cli(args)
    report = json.loads((out / "report.json").read_text())
    assert report["mixes"]["big"]["status"] == "failed" and "161 px" in report["mixes"]["big"]["error"]
    assert report["mixes"]["mae"]["status"] == "done" and report["mixes"]["mae"]["metrics"]["a"]["psnr"] > 0
    assert "**failed**" in (out / "report.md").read_text() and (out / "grid.png").is_file()


def test_minutes_budget_stops_each_mix_at_a_step_boundary(faces, tmp_path):
    """--minutes: a budget shorter than one step still trains (and checkpoints) one step per mix and
    counts the mix as done, not interrupted."""
    out = tmp_path / "cmp"
    args = compare_args(faces, out, ["mae=mae:1", "ssim=ssim:1"], ["--minutes", "0.0001"], two_sides=False)
    run_cli(args)
    report = json.loads((out / "report.json").read_text())
    for name in ("mae", "ssim"):
        assert report["mixes"][name]["status"] == "done"
        assert torch.load(out / name / "checkpoints" / "last.pt", weights_only=True)["step"] == 1
