"""Bad input through the real CLI: one line (exit 2 unless said), nothing written, no traceback.

A resumed run's train.steps against its step, non-finite and all-zero settings, a compare whose
every mix fails, a random .pt given as a checkpoint, a read-only output folder, a demo typo, and
the re-run of a finished demo.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tools.synthetic_faces import make_face_set

from ..helpers import TINY_MODEL, read_only, run_cli, sets

RUN = [*TINY_MODEL, "data.batch_size=2", "data.workers=0", "train.device=cpu", "train.log_every=1",
       "train.save_every=2", "train.preview_every=2", "train.eval_every=2", "train.warmup_steps=0",
       "train.drops=[]", "data.val_fraction=0.2"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_input") / "A"
    make_face_set(folder, 10, size=64, seed=0)
    return folder


@pytest.fixture(scope="module")
def trained(faces, tmp_path_factory):
    """A run trained to step 2."""
    run = tmp_path_factory.mktemp("trained") / "run"
    run_cli(train_args(faces, run, ["train.steps=2"]))
    return run


def train_args(faces: Path, run: Path, extra: list[str] = ()) -> list[str]:
    return ["train", "-A", str(faces), "-o", str(run), *sets(RUN + list(extra))]


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (a write of any kind changes this)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(res) -> str:
    """The one line of a refused command."""
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in res.output, res.output
    return lines[0].removeprefix("Error: ")


def test_resume_below_the_run_step_is_refused(faces, trained):
    before = files_of(trained)
    res = run_cli(train_args(faces, trained, ["train.steps=1"]), expect=2)
    assert error_line(res) == f"run {trained} is at step 2, past train.steps = 1: raise train.steps to train longer"
    assert files_of(trained) == before


def test_resume_at_the_run_step_has_nothing_to_do(faces, trained):
    before = files_of(trained)
    res = run_cli(train_args(faces, trained, ["train.steps=2"]))
    assert res.output.strip() == (f"Nothing to train: run {trained} is already at step 2 (train.steps = 2); "
                                  "raise train.steps to train longer.")
    assert files_of(trained) == before


@pytest.mark.parametrize("override, message", [
    ("train.lr=nan", "train.lr must be a finite number, got nan"),
    ("train.lr=inf", "train.lr must be a finite number, got inf"),
    ("loss.0.sigma=nan", "loss 'ssim' setting 'sigma' must be a finite number, got nan"),
    ("loss.0.weight=0", "every [[loss]] weight is 0: nothing would be trained; give one loss a weight > 0"),
])
def test_train_refuses_non_finite_and_all_zero_settings(faces, tmp_path, override, message):
    run = tmp_path / "run"
    extra = [override] + (["loss.1.weight=0"] if "weight" in override else [])
    res = run_cli(train_args(faces, run, ["train.steps=2", *extra]), expect=2)
    assert error_line(res) == message
    assert not run.exists()


def compare_args(faces: Path, out: Path, mixes: list[str]) -> list[str]:
    args = ["compare", "-A", str(faces), "-o", str(out), "--no-progress", *sets(RUN + ["train.steps=2"])]
    return args + [x for m in mixes for x in ("--mix", m)]


def test_compare_refuses_a_mix_of_zero_weights(faces, tmp_path):
    out = tmp_path / "cmp"
    res = run_cli(compare_args(faces, out, ["m=mae:1", "z=mae:0"]), expect=2)
    assert error_line(res) == ("--mix z: every [[loss]] weight is 0: nothing would be trained; give one loss "
                               "a weight > 0")
    assert not out.exists()


def test_compare_where_every_mix_fails_exits_1(faces, tmp_path):
    """MS-SSIM's 5 scales need 161 px faces: each mix fails in training, and the compare with them."""
    out = tmp_path / "cmp"
    res = run_cli(compare_args(faces, out, ["big=ms_ssim:1:scales=5", "bigger=ms_ssim:1:scales=5:window_size=9"]),
                  expect=1)
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Error: every mix failed, nothing to compare (big: loss 'ms_ssim' cannot run"), last
    assert "; bigger: loss 'ms_ssim' cannot run" in last and str(out / "report.md") in last
    report = json.loads((out / "report.json").read_text())
    assert {e["status"] for e in report["mixes"].values()} == {"failed"}


@pytest.mark.parametrize("content, why", [
    (torch.nn.Linear(2, 2), "(it holds Python objects, not only tensors, so it was not opened)"),
    ({"a": 1}, "(it has no format_version)"),
])
def test_a_random_pt_is_not_a_checkpoint(trained, tmp_path, content, why):
    path = tmp_path / "x.pt"
    torch.save(content, path)
    res = run_cli(["preview", str(trained), "--checkpoint", str(path), "-o", str(tmp_path / "p.png")], expect=2)
    assert error_line(res) == (f"{path} is not a faceswap-lite checkpoint {why}; give a run folder or a "
                               "checkpoint written by faceswap-lite train")
    assert not (tmp_path / "p.png").exists()


def test_a_read_only_output_folder_is_refused_up_front(faces, tmp_path):
    parent = tmp_path / "ro"
    with read_only(parent):
        for args in (train_args(faces, parent / "run", ["train.steps=2"]),
                     train_args(faces, parent, ["train.steps=2"]),
                     compare_args(faces, parent / "cmp", ["m=mae:1"]),
                     ["demo", "-o", str(parent / "demo"), "--steps", "1"]):
            res = run_cli(args, expect=2)
            assert "not writable" in error_line(res), res.output
        assert list(parent.iterdir()) == []


def test_a_demo_typo_is_refused_before_the_clip_is_made(tmp_path):
    out = tmp_path / "demo"
    res = run_cli(["demo", "-o", str(out), "--set", "train.stpes=3"], expect=2)
    assert "unknown config key 'train.stpes'; did you mean 'steps'?" in error_line(res)
    assert not out.exists()


@pytest.mark.slow
def test_a_finished_demo_run_again_only_converts(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "-o", str(out), "--steps", "2", "--frames", "4", "--no-progress", "--set", "data.workers=0"]
    run_cli(args)
    before = files_of(out / "run")
    res = run_cli(args)
    assert f"Already trained: {out / 'run'} is at step 2 (train.steps); converting with it." in res.output
    assert "nan" not in res.output and "faces/s" not in res.output.split("3/3")[0].split("2/3")[1]
    assert files_of(out / "run") == before
    assert (out / "converted" / "sample_clip.avi").is_file()
