"""convert on bad inputs and outputs, through the real CLI: a read-only or full output (photos
and videos), inputs that cannot be read, a --faces set of other inputs, an output folder that is
an input, a device that is not there. Each is one line, and no half-written file is left."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest
import torch

from ..helpers import PHOTOS, error_line, fill, read_only, run_cli_with_file_limit, small_disk
from .conftest import FRAMES, run_cli


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def png_photo(tmp_path: Path) -> Path:
    """A real photo as PNG (its converted copy is a few hundred kB: more than a full disk holds)."""
    photo = tmp_path / "in" / "obama.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), cv2.imread(str(PHOTOS / "obama.jpg")))
    return photo


def test_read_only_output_is_one_line_as_root_too(run, png_photo, tmp_path):
    with read_only(tmp_path / "ro") as out:
        for target in (out, out / "new"):
            res = run_cli(["convert", png_photo, "-m", run, "-o", target, "-j", "1"], expect=2)
            assert "not writable" in error_line(res.output)
        assert _files(out) == []


@pytest.mark.parametrize("what", ["photo", "video"])
def test_full_disk_is_one_line_and_leaves_no_partial_file(what, run, png_photo, clip, tmp_path):
    source = png_photo if what == "photo" else clip
    with small_disk(tmp_path / "disk", megabytes=1) as disk:
        fill(disk, leave=16_000)  # room for the check, not for the converted file
        res = run_cli(["convert", source, "-m", run, "-o", disk / "out", "-j", "1"], expect=2)
        line = error_line(res.output.split("\n", 1)[1])  # after the "Model ..." line
        assert "no space left on" in line and str(disk / "out" / source.name) in line
        assert _files(disk / "out") == []  # no temporary or partial file


@pytest.mark.parametrize("what", ["photo", "video"])
def test_file_size_limit_is_the_same_line(what, run, png_photo, clip, tmp_path):
    """The twin that runs everywhere: PyAV's EFBIG for the video, write_atomic's for the photo."""
    source = png_photo if what == "photo" else clip
    out = tmp_path / "out"
    res = run_cli_with_file_limit(["convert", source, "-m", run, "-o", out, "-j", "1"], limit=16_000)
    assert res.returncode == 2, res.stderr
    line = error_line(res.stderr)
    assert "no space left on" in line and str(out / source.name) in line and "MB needed" in line
    assert _files(out) == []


def test_only_unreadable_inputs_exit_non_zero_after_the_summary(run, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    res = run_cli(["convert", broken, "-m", run, "-o", tmp_path / "out", "-j", "1"], expect=1)
    assert "Skipped: 1 file: unreadable image" in res.output  # the summary comes first
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Error: nothing was converted: the input could not be read (") and "broken.jpg" in last
    assert _files(tmp_path / "out") == []


def test_faces_of_other_inputs_warn_or_stop_before_writing(run, faces, clip, png_photo, tmp_path):
    out = tmp_path / "out"
    res = run_cli(["convert", png_photo, "-m", run, "-o", out, "--faces", faces], expect=2)
    line = error_line(res.output)
    assert f"--faces '{faces}' has no faces of any input ({png_photo})" in line and not out.exists()
    res = run_cli(["convert", clip, png_photo, "-m", run, "-o", out, "--faces", faces])
    assert f"Warning: --faces {faces} has no faces of {png_photo}: it is written unchanged" in res.output
    assert f"Faces:   {FRAMES} swapped" in res.output and _files(out) == ["clip.mp4", "obama.png"]


def test_an_output_that_is_or_holds_an_input_is_named(run, png_photo):
    folder = png_photo.parent
    for out in (folder, folder.parent):
        line = error_line(run_cli(["convert", folder, "-m", run, "-o", out, "-j", "1"], expect=2).output)
        assert f"-o '{out}' is (or contains) the input '{folder}'" in line
    assert _files(folder.parent) == ["in/obama.png"]


@pytest.mark.parametrize("device, words", [("banana", "--device 'banana': not a device; use auto, cpu, cuda or cuda:N"),
                                           ("cuda", "--device 'cuda': no CUDA GPU is available here")])
def test_a_device_that_is_not_there_is_one_line(device, words, run, png_photo, tmp_path):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    res = run_cli(["convert", png_photo, "-m", run, "-o", tmp_path / "out", "--device", device], expect=2)
    assert words in error_line(res.output) and not (tmp_path / "out").exists()


def test_unreadable_copy_among_good_inputs_still_exits_zero(run, png_photo, tmp_path):
    shutil.copy(png_photo, png_photo.parent / "copy.png")
    (png_photo.parent / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    res = run_cli(["convert", png_photo.parent, "-m", run, "-o", tmp_path / "out", "-j", "1"])
    assert "Skipped: 1 file: unreadable image" in res.output and _files(tmp_path / "out") == ["copy.png", "obama.png"]

