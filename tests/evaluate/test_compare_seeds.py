"""compare --seeds: every mix once per train.seed (nothing else differs), the report's mean [min–max]
over the seeds, resume per (mix, seed), and bad --seeds values refused before anything is written."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from PIL import Image

from ..helpers import run_cli, sets
from .test_compare import STEPS, compare_args

MIXES = ["mae=mae:1", "ssim=ssim:1"]
SEEDS = (0, 1)


def seeded_args(faces, out, extra=()):
    return compare_args(faces, out, MIXES, ["--seeds", ",".join(map(str, SEEDS)), *extra], two_sides=False)


@pytest.fixture(scope="module")
def seeded(faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare_seeds") / "cmp"
    res = run_cli(seeded_args(faces, out))
    return out, res.output


def checkpoint(out, mix, seed):
    return torch.load(out / mix / f"seed-{seed}" / "checkpoints" / "last.pt", weights_only=False)


def test_every_mix_trains_once_per_seed_with_only_the_seed_different(seeded):
    out, output = seeded
    assert "2 mixes × 2 seeds" in output, output
    configs = {}
    for mix in ("mae", "ssim"):
        for seed in SEEDS:
            state = checkpoint(out, mix, seed)
            assert state["step"] == STEPS and state["config"]["train"]["seed"] == seed
            configs[mix, seed] = state["config"]
    # everything but the losses is equal across mixes, and everything but train.seed across seeds
    strip = [{**c, "loss": None, "train": {**c["train"], "seed": None}} for c in configs.values()]
    assert all(c == strip[0] for c in strip)
    assert configs["mae", 0]["loss"] == configs["mae", 1]["loss"] != configs["ssim", 0]["loss"]
    splits = {json.dumps(json.loads((out / m / f"seed-{s}" / "split.json").read_text()), sort_keys=True)
              for m in ("mae", "ssim") for s in SEEDS}
    assert len(splits) == 1  # the held-out split does not depend on the seed


def test_the_report_gives_mean_and_range_over_the_seeds(seeded):
    out, _ = seeded
    report = json.loads((out / "report.json").read_text())
    assert report["seeds"] == list(SEEDS)
    for name, entry in report["mixes"].items():
        assert entry["status"] == "done" and entry["seeds_done"] == 2 and sorted(entry["seeds"]) == ["0", "1"]
        for key in ("psnr", "ssim", "gmsd"):
            per_seed = [entry["seeds"][s]["metrics"]["a"][key] for s in ("0", "1")]
            assert entry["mean"]["a"][key] == pytest.approx(sum(per_seed) / 2), (name, key)
            assert entry["min"]["a"][key] == min(per_seed) and entry["max"]["a"][key] == max(per_seed)
    # the seeds trained different models: their figures differ
    psnr = [report["mixes"]["mae"]["seeds"][s]["metrics"]["a"]["psnr"] for s in ("0", "1")]
    assert psnr[0] != psnr[1]
    text = (out / "report.md").read_text()
    assert "| mix | losses | seeds | steps | min |" in text
    mae_row = next(ln for ln in text.splitlines() if ln.startswith("| `mae` |"))
    assert "| 2 |" in mae_row
    cells = re.findall(r"(\d+\.\d+) \[(\d+\.\d+)–(\d+\.\d+)\]", mae_row)
    assert len(cells) >= 4, mae_row
    assert all(float(lo) <= float(mean) <= float(hi) for mean, lo, hi in cells)
    assert "within seed noise" in text and "seed 0 runs" in text and "**" in text
    with Image.open(out / "grid.png") as grid:  # the first seed's runs: input + one column per mix
        assert grid.width == 3 * 96
    assert (out / "curves.png").is_file()


def test_running_the_same_command_again_trains_nothing(seeded, faces):
    out, _ = seeded
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/seed-*/checkpoints/last.pt")}
    assert len(before) == 4
    res = run_cli(seeded_args(faces, out))
    assert "to train: none." in res.output, res.output
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/seed-*/checkpoints/last.pt")} == before


def test_a_seeded_folder_resumes_only_with_seeds(seeded, faces):
    out, _ = seeded
    res = run_cli(compare_args(faces, out, MIXES, two_sides=False), expect=2)
    assert "with --seeds" in res.output and len(res.output.strip().splitlines()) == 1, res.output


@pytest.mark.parametrize("value, words", [("0,0", "seed 0 is given twice"), ("a", "integers"),
                                          ("", "integers"), ("1,,2", "integers")])
def test_bad_seeds_are_refused_before_anything_is_written(faces, tmp_path, value, words):
    res = run_cli(compare_args(faces, tmp_path / "cmp", MIXES, ["--seeds", value], two_sides=False), expect=2)
    assert f"--seeds {value!r}" in res.output and words in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "cmp").exists()


def test_seeds_and_a_set_seed_are_refused(faces, tmp_path):
    args = compare_args(faces, tmp_path / "cmp", MIXES, ["--seeds", "0,1", *sets(["train.seed=3"])],
                        two_sides=False)
    res = run_cli(args, expect=2)
    assert "--set train.seed" in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "cmp").exists()


def test_more_seeds_later_train_only_the_new_seed(seeded, faces, tmp_path):
    out = tmp_path / "cmp"
    shutil.copytree(seeded[0], out)
    res = run_cli(compare_args(faces, out, MIXES, ["--seeds", "0,1,2"], two_sides=False))
    assert "to train: mae/seed-2, ssim/seed-2." in res.output, res.output
    report = json.loads((out / "report.json").read_text())
    assert all(e["seeds_done"] == 3 for e in report["mixes"].values())


def test_a_seed_run_is_the_run_of_a_compare_with_that_train_seed(faces, tmp_path):
    """--seeds S trains what a compare without --seeds trains with --set train.seed=S."""
    plain = compare_args(faces, tmp_path / "plain", ["mae=mae:1"], sets(["train.seed=1"]), two_sides=False)
    seeded = compare_args(faces, tmp_path / "seeded", ["mae=mae:1"], ["--seeds", "1"], two_sides=False)
    run_cli(plain)
    run_cli(seeded)
    one = json.loads((tmp_path / "plain" / "report.json").read_text())["mixes"]["mae"]["metrics"]
    per_seed = json.loads((tmp_path / "seeded" / "report.json").read_text())["mixes"]["mae"]["seeds"]["1"]
    assert per_seed["metrics"] == one
