"""``sort`` as a command (:mod:`faceswap_lite.sort.run`): copy, move, dry run, bad requests, interrupts, old sets, the benchmark."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from faceswap_lite.faceset import CORRUPT, NO_METADATA, NOT_PNG, list_faces, read_face, read_meta, write_face
from faceswap_lite.sort import order as order_mod
from faceswap_lite.sort import sort_faceset
from faceswap_lite.sort.scan import scan_faceset

from ..helpers import error_line, fill, load_script, read_only, run_cli_with_file_limit, small_disk
from .conftest import OBAMA, _cli, _order, _stem


def test_copy_with_rank_prefix_and_bins(faceset: Path, tmp_path: Path):
    code, output = _cli("sort", str(faceset), "--by", "blur", "-o", str(tmp_path / "out"))
    assert code == 0, output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) == 9 and files[0].startswith("00001_") and _stem(files[-1]) == "obama-blur"
    assert len(list_faces(faceset)) == 9  # the set is untouched
    read_face(tmp_path / "out" / files[0])  # a whole face, metadata kept
    code, output = _cli("sort", str(faceset), "--by", "size", "-o", str(tmp_path / "bins"), "--bins", "3")
    assert code == 0, output
    assert [len(list((tmp_path / "bins" / f"bin_{k}").iterdir())) for k in (1, 2, 3)] == [3, 3, 3]
    code, output = _cli("sort", str(faceset), "--by", "face", "-o", str(tmp_path / "people"))
    assert code == 0 and len(list((tmp_path / "people" / "group_001").iterdir())) == len(OBAMA)


def test_dry_run_and_move(faceset: Path, tmp_path: Path):
    code, output = _cli("sort", str(faceset), "--by", "yaw", "--dry-run", "-o", str(tmp_path / "dry"))
    lines = output.strip().splitlines()
    assert code == 0 and lines[0].startswith("# yaw") and len(lines) == 10 and not (tmp_path / "dry").exists()
    assert lines[1].split()[0] == "1" and float(lines[1].split()[1]) <= float(lines[-1].split()[1])
    copy = tmp_path / "set"
    shutil.copytree(faceset, copy)
    code, output = _cli("sort", str(copy), "--by", "score", "--move", "-o", str(tmp_path / "moved"))
    assert code == 0 and "Moved 9 faces" in output
    assert list_faces(copy) == [] and len(list_faces(tmp_path / "moved")) == 9


def test_bad_output_and_foreign_files(faceset: Path, tmp_path: Path):
    for out, words in [(faceset / "sorted", "inside the face set"), (faceset, "inside the face set")]:
        code, output = _cli("sort", str(faceset), "--by", "blur", "-o", str(out))
        assert code == 2 and words in output and not (faceset / "sorted").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    code, output = _cli("sort", str(faceset), "--by", "blur", "-o", str(full))
    assert code == 2 and "already holds files" in output and os.listdir(full) == ["notes.txt"]
    code, output = _cli("sort", str(faceset), "--by", "blurr", "--dry-run")
    assert code == 2 and "did you mean 'blur'" in output
    code, output = _cli("sort", str(faceset), "--by", "face", "--bins", "2", "--dry-run")
    assert code == 2 and "--bins does not apply" in output

    dirty = tmp_path / "dirty"
    shutil.copytree(faceset, dirty)
    Image.new("RGB", (8, 8)).save(dirty / "plain.png")  # a PNG, but not a face
    (dirty / "text.png").write_text("not an image")
    good = list_faces(faceset)[0].read_bytes()
    (dirty / "cut.png").write_bytes(good[: len(good) // 2])  # metadata present, pixels truncated
    (dirty / "junk.png").write_bytes(good[:8] + b"junk")  # a PNG signature, then nothing PNG
    scan = scan_faceset(dirty, sharp=True)
    assert len(scan.faces) == 9 and scan.total == 13
    assert {k: len(v) for k, v in scan.skipped.items()} == {NOT_PNG: 1, NO_METADATA: 1, CORRUPT: 2}
    code, output = _cli("faceset", str(dirty))
    assert code == 0 and "9 faces in 13 PNG files" in output
    assert f"1 file skipped: {NO_METADATA} (plain.png)" in output


def test_interrupted_copy_leaves_whole_files(faceset: Path, tmp_path: Path, monkeypatch):
    calls = []
    real = shutil.copyfileobj

    def copy_then_stop(src, dst, *a):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C in the middle of the third file
            dst.write(src.read(100))
            raise KeyboardInterrupt
        real(src, dst, *a)

    monkeypatch.setattr(order_mod.shutil, "copyfileobj", copy_then_stop)
    with pytest.raises(KeyboardInterrupt):
        sort_faceset(faceset, "score", tmp_path / "out")
    left = sorted((tmp_path / "out").iterdir())
    assert [p.name[:5] for p in left] == [".sort", "00001", "00002"]  # the plan; no half file, no temporary
    for p in left[1:]:
        read_face(p)
    monkeypatch.undo()
    result = sort_faceset(faceset, "score", tmp_path / "out")  # the same command again goes on
    assert result.already_there == 2 and len(list_faces(tmp_path / "out")) == 9
    assert not (tmp_path / "out" / order_mod.UNFINISHED).exists()


def test_read_only_output_is_one_line_as_root_too(faceset: Path, tmp_path: Path):
    with read_only(tmp_path / "ro") as out:
        for target in (out, out / "new"):
            code, output = _cli("sort", str(faceset), "--by", "blur", "-o", str(target))
            assert code == 2 and "not writable" in error_line(output)
        assert list(out.iterdir()) == []


def _stopped_then_finished(faceset: Path, out: Path, output: str, code: int) -> None:
    """A sort stopped by a full disk: one line saying how to go on, whole faces and the plan left;
    the same command again finishes it."""
    assert code == 2, output
    line = error_line(output)
    assert "no space left on" in line and "run the same command again: it goes on from the" in line
    copied = [p for p in out.iterdir() if p.name != order_mod.UNFINISHED]
    assert 0 < len(copied) < 9 and (out / order_mod.UNFINISHED).exists()
    for p in copied:
        read_face(p)
    code, output = _cli("sort", str(faceset), "--by", "score", "-o", str(out))
    assert code == 0 and f"finishing an unfinished sort: {len(copied)} were there" in output, output
    assert len(list_faces(out)) == 9 and not (out / order_mod.UNFINISHED).exists()
    ranked = sort_faceset(faceset, "score", dry_run=True).ranked  # the names of an uninterrupted sort
    assert sorted(out.iterdir()) == sorted(order_mod.destinations(ranked, out, "score"))


def test_full_disk_stops_in_one_line_and_the_same_command_goes_on(faceset: Path, tmp_path: Path):
    with small_disk(tmp_path / "disk", megabytes=1) as disk:
        filler = fill(disk, leave=300_000)  # room for a few faces (~85 kB each), not for nine
        code, output = _cli("sort", str(faceset), "--by", "score", "-o", str(disk / "out"))
        filler.unlink()  # space again
        _stopped_then_finished(faceset, disk / "out", output, code)


def test_file_size_limit_stops_in_one_line_and_the_same_command_goes_on(faceset: Path, tmp_path: Path):
    """The twin that runs everywhere: a file-size limit that lets the first face through, not the largest."""
    sizes = [r.face.path.stat().st_size for r in sort_faceset(faceset, "score", dry_run=True).ranked]
    assert max(sizes) > sizes[0]
    out = tmp_path / "out"
    res = run_cli_with_file_limit(["sort", faceset, "--by", "score", "-o", out], limit=sizes[0])
    _stopped_then_finished(faceset, out, res.stdout + res.stderr, res.returncode)


def test_an_unfinished_sort_of_another_request_is_refused(faceset: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(order_mod.shutil, "copyfileobj", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        sort_faceset(faceset, "score", tmp_path / "out")
    monkeypatch.undo()
    code, output = _cli("sort", str(faceset), "--by", "blur", "-o", str(tmp_path / "out"))
    assert code == 2 and "holds an unfinished sort of" in error_line(output) and "by score" in output
    (tmp_path / "out" / "mine.txt").write_text("x")
    code, output = _cli("sort", str(faceset), "--by", "score", "-o", str(tmp_path / "out"))
    assert code == 2 and "holds mine.txt, which its unfinished sort did not put there" in error_line(output)


def test_version_1_faces_get_descriptors_on_the_fly(faceset: Path, tmp_path: Path):
    old = tmp_path / "v1"
    old.mkdir()
    for path in list_faces(faceset):
        rgb, meta = read_face(path)
        meta.version, meta.descriptor = 1, None
        write_face(old / path.name, rgb, meta)
    assert read_meta(list_faces(old)[0]).descriptor is None
    from faceswap_lite.data import FaceStore

    store = FaceStore(old, 64)  # training reads version 1 sets as before
    assert len(store) == 9 and not store.skipped
    result = sort_faceset(old, "identity", dry_run=True)
    assert result.scan.computed == 9
    assert [_stem(r.face.path.name) for r in result.ranked][-2:] == [n for n, _ in _order(faceset, "identity")][-2:]
    code, output = _cli("faceset", str(old))
    assert code == 0 and "version 1: 9 faces" in output and "9 descriptors computed now" in output


def test_bench_sort_runs_on_a_tiny_set(tmp_path: Path, capsys):
    md = tmp_path / "benchmarks.md"
    bench = load_script("tools/bench_sort.py")
    assert bench.main(["--faces", "10", "--repeats", "1", "--old-faces", "4", "--keys", "yaw,identity",
                       "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    for case in ("| read pixels |", "| sort --by yaw --dry-run |", "| sort --by identity --dry-run |",
                 f"| {bench.NO_DESCRIPTORS} |"):
        assert case in out
    assert "\n## sort\n" in md.read_text() and "10 faces of 256²" in md.read_text()
