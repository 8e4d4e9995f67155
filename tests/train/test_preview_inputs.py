"""``preview`` on bad inputs and outputs, through the real CLI, on the one-side run the convert tests
train: a missing, read-only or full output folder, an image suffix, a damaged face, -B on a
one-side run, a device that is not there. Each is written right or refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from faceswap_lite.faceset import CORRUPT, list_faces

from ..convert import conftest as convert_fixtures
from ..helpers import error_line, fill, read_only, run_cli, run_cli_with_file_limit, small_disk

# The convert tests' clip, its face set and the one-side (A) run trained on it: built once a session.
clip, faces, run = convert_fixtures.clip, convert_fixtures.faces, convert_fixtures.run


def _preview(*args: str | Path, expect: int = 0) -> str:
    return run_cli(["preview", *map(str, args)], expect=expect).output


def test_a_missing_folder_is_made_and_the_suffix_names_the_format(run, tmp_path):
    for name, fmt in (("new/dir/grid.png", "PNG"), ("grid.jpg", "JPEG"), ("grid.JPEG", "JPEG"),
                      ("grid.webp", "WEBP")):
        text = _preview(run, "-n", "2", "-o", tmp_path / name)
        assert f"Wrote {tmp_path / name}" in text
        with Image.open(tmp_path / name) as im:
            assert im.format == fmt, name
    line = error_line(_preview(run, "-o", tmp_path / "grid.gif", expect=2))
    assert "cannot write .gif; name a .png, .jpg or .webp file" in line and not (tmp_path / "grid.gif").exists()


def test_a_read_only_output_is_one_line_as_root_too(run, tmp_path):
    with read_only(tmp_path / "ro") as ro:
        for out in (ro / "grid.png", ro / "new" / "grid.png"):
            assert "not writable" in error_line(_preview(run, "-o", out, expect=2))
        assert list(ro.iterdir()) == []


def test_a_full_output_is_one_line_and_leaves_nothing(run, tmp_path):
    with small_disk(tmp_path / "disk", megabytes=1) as disk:
        fill(disk, leave=8192)  # room for the check, not for the grid
        line = error_line(_preview(run, "-o", disk / "grid.png", expect=2))
        assert "no space left on" in line and str(disk / "grid.png") in line
        assert [p.name for p in disk.iterdir()] == [".filler"]


def test_a_file_size_limit_is_the_same_line(run, tmp_path):
    """The twin that runs everywhere."""
    res = run_cli_with_file_limit(["preview", run, "-o", tmp_path / "grid.png"], limit=8192)
    assert res.returncode == 2 and "no space left on" in error_line(res.stderr), res.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_face_is_named_in_a_warning(run, faces, tmp_path):
    damaged = tmp_path / "faces"
    shutil.copytree(faces, damaged)
    first = list_faces(damaged)[0]
    first.write_bytes(first.read_bytes()[: first.stat().st_size * 2 // 3])  # metadata kept, pixels cut
    text = _preview(run, "-A", damaged, "-n", "2", "-o", tmp_path / "grid.png")
    assert f"Warning: side A: skipped 1 face file(s): {CORRUPT} ({first.name})" in text


def test_b_on_a_one_side_run_is_one_line(run, faces, tmp_path):
    line = error_line(_preview(run, "-B", faces, "-o", tmp_path / "grid.png", expect=2))
    assert "the run has one side (A): -B has no decoder to render" in line
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("device, words", [("banana", "--device 'banana': not a device; use auto, cpu, cuda or cuda:N"),
                                           ("cuda", "--device 'cuda': no CUDA GPU is available here")])
def test_a_device_that_is_not_there_is_one_line(device, words, run, tmp_path):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert words in error_line(_preview(run, "--device", device, "-o", tmp_path / "grid.png", expect=2))
