"""extract on bad inputs and outputs, through the real CLI: a full disk (in a worker process too),
an output folder that is an input, sources that cannot be read. Each ends in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..helpers import PHOTOS, error_line, fill, run_cli, run_cli_with_file_limit, small_disk


def _extract(*args: str | Path, expect: int) -> str:
    return run_cli(["extract", *map(str, args)], expect=expect).output


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_full_disk_is_one_line_and_leaves_no_half_face(tmp_path: Path):
    with small_disk(tmp_path / "disk", megabytes=1) as disk:
        fill(disk, leave=40_000)  # room for the check and the folders, not for a 256-px face (~85 kB)
        text = _extract(PHOTOS / "obama.jpg", "-o", disk / "faces", "-j", "1", expect=2)
        line = error_line(text)
        assert "no space left on" in line and str(disk / "faces") in line and "MB needed" in line
        assert _files(disk / "faces") == []  # no temporary file, no done-marker


def test_file_size_limit_in_a_spawned_worker_is_the_same_line(tmp_path: Path):
    """The twin that runs everywhere: the faces are written by two spawned workers, whose error
    must come back through the pool whole."""
    out = tmp_path / "faces"
    res = run_cli_with_file_limit(["extract", PHOTOS / "obama.jpg", PHOTOS / "biden.jpg", "-o", out, "-j", "2"],
                                  limit=40_000)
    assert res.returncode == 2, res.stderr
    line = error_line(res.stderr)
    assert "no space left on" in line and str(out) in line and "Traceback" not in res.stderr
    assert [f for f in _files(out) if f.endswith(".tmp")] == []


def test_an_output_that_is_or_holds_an_input_is_named(tmp_path: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(PHOTOS / "obama.jpg", photos / "obama.jpg")
    for out, given in ((photos, photos), (tmp_path, photos), (photos, photos / "obama.jpg")):
        line = error_line(_extract(given, "-o", out, "-j", "1", expect=2))
        assert f"-o '{out}' is (or contains) the input '{given}'" in line and "outside the inputs" in line
    assert _files(tmp_path) == ["photos/obama.jpg"]
    # A separate output folder inside an input folder is fine: it is left out of the sources.
    _extract(photos, "-o", photos / "faces", "-j", "1", expect=0)


def test_sources_that_cannot_be_read_are_said_so(tmp_path: Path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    text = _extract(tmp_path / "broken.jpg", tmp_path / "broken.mp4", "-o", tmp_path / "faces", "-j", "1",
                    expect=1)
    last = text.strip().splitlines()[-1]
    assert last.startswith("Error: none of the 2 sources could be read (") and "broken.jpg" in last
    assert "broken.mp4" in last and "upsample" not in last
    # Frames that were read but hold no face keep the detector hint.
    text = _extract(PHOTOS / "rocket.jpg", tmp_path / "broken.jpg", "-o", tmp_path / "f2", "-j", "1", expect=1)
    last = text.strip().splitlines()[-1]
    assert "no face found" in last and "upsample" in last and "1 more could not be read" in last
