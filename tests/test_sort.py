"""``sort`` and ``faceset`` on a face set extracted from the real photos in tests/data.

Besides the photos as they are, the set holds faces made from them here so the answer is known:
Obama blurred (a Gaussian of σ = 3 px), obama3 mirrored (the same turn of the head, the other way),
Obama turned 15° clockwise, and Obama at half size.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceswap_lite.extract import ExtractOptions, plan_extract, run_extract
from faceswap_lite.faceset import CORRUPT, NO_METADATA, NOT_PNG, list_faces, read_face, read_meta, write_face
from faceswap_lite.sort import order as order_mod
from faceswap_lite.sort import sort_faceset
from faceswap_lite.sort.scan import scan_faceset

from .helpers import load_script, run_cli

DATA = Path(__file__).resolve().parent / "data"
OBAMA = ("obama", "obama2", "obama3", "obama-blur", "obama3-mirror", "obama-roll15", "obama-half")


def _rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)  # OpenCV: positive is anticlockwise
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def faceset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    photos = tmp_path_factory.mktemp("photos")
    for p in DATA.glob("*.jpg"):
        shutil.copy(p, photos / p.name)
    obama, obama3 = cv2.imread(str(DATA / "obama.jpg")), cv2.imread(str(DATA / "obama3.jpg"))
    cv2.imwrite(str(photos / "obama-blur.png"), cv2.GaussianBlur(obama, (0, 0), 3))
    cv2.imwrite(str(photos / "obama3-mirror.png"), obama3[:, ::-1])
    cv2.imwrite(str(photos / "obama-roll15.png"), _rotate(obama, 15))
    cv2.imwrite(str(photos / "obama-half.png"), cv2.resize(obama, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    out = tmp_path_factory.mktemp("set") / "faces"
    summary = run_extract(plan_extract([str(photos)], out, ExtractOptions(workers=1)))
    assert summary.faces_written == 9, summary.lines()
    return out


def _stem(name: str) -> str:
    """The source photo's stem from a face name (``00001_obama-2da66a_000000_00.png`` -> ``obama``)."""
    name = name.split("_", 1)[1] if name[:5].isdigit() else name
    return name.rsplit("-", 1)[0]


def _order(folder: Path, by: str, **kw) -> list[tuple[str, float]]:
    result = sort_faceset(folder, by, dry_run=True, **kw)
    return [(_stem(r.face.path.name), r.value) for r in result.ranked]


def _cli(*args: str) -> tuple[int, str]:
    result = run_cli(list(args), expect=None)
    return result.exit_code, result.output


def test_blur_puts_the_blurred_face_last(faceset: Path):
    order = _order(faceset, "blur")
    assert order[-1][0] == "obama-blur"
    values = dict(order)
    assert values["obama-blur"] < 0.3 * values["obama"]


def test_yaw_orders_a_mirrored_pair(faceset: Path):
    order = _order(faceset, "yaw")
    names = [n for n, _ in order]
    values = dict(order)
    assert names.index("obama3-mirror") < names.index("obama3")
    assert values["obama3"] > 0.1 and abs(values["obama3"] + values["obama3-mirror"]) < 0.05


def _move_nose(img: np.ndarray, landmarks: np.ndarray, shift: float) -> np.ndarray:
    """``img`` with the rows between the eyes and the mouth remapped so the nose tip moves ``shift``
    pixels down (up if negative) while the eye line and the mouth stay: the nose's place between
    them is what tells a face looking up from one looking down."""
    eyes, nose, mouth = landmarks[36:48, 1].mean(), landmarks[30, 1], landmarks[[48, 54], 1].mean()
    rows = np.arange(img.shape[0], dtype=np.float32)
    # Output row -> source row: piecewise linear through (eyes, eyes), (nose + shift, nose), (mouth, mouth).
    src = np.interp(rows, [0, eyes, nose + shift, mouth, img.shape[0] - 1],
                    [0, eyes, nose, mouth, img.shape[0] - 1]).astype(np.float32)
    map_y = np.repeat(src[:, None], img.shape[1], axis=1)
    map_x = np.repeat(np.arange(img.shape[1], dtype=np.float32)[None], img.shape[0], axis=0)
    return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR)


def test_pitch_orders_down_to_up(tmp_path: Path):
    from faceswap_lite.extract.detect import DetectorSpec, detector_for, find_faces
    from faceswap_lite.extract.sources import read_image

    rgb = read_image(DATA / "obama.jpg")
    (landmarks,) = find_faces(detector_for(DetectorSpec.check("dlib-hog")), rgb)
    photos = tmp_path / "photos"
    photos.mkdir()
    bgr = cv2.imread(str(DATA / "obama.jpg"))
    cv2.imwrite(str(photos / "obama.png"), bgr)
    cv2.imwrite(str(photos / "obama-up.png"), _move_nose(bgr, landmarks, -8))  # nose nearer the eyes
    cv2.imwrite(str(photos / "obama-down.png"), _move_nose(bgr, landmarks, 8))
    run_extract(plan_extract([str(photos)], tmp_path / "faces", ExtractOptions(workers=1)))
    order = _order(tmp_path / "faces", "pitch")
    assert [n for n, _ in order] == ["obama-down", "obama", "obama-up"]
    values = dict(order)
    assert values["obama-up"] - values["obama"] > 0.03 and values["obama"] - values["obama-down"] > 0.03


def test_roll_and_size(faceset: Path):
    roll = dict(_order(faceset, "roll"))
    assert abs(roll["obama"]) < 5 and abs(roll["obama-roll15"] - roll["obama"] - 15) < 2
    size = dict(_order(faceset, "size"))
    assert abs(size["obama-half"] / size["obama"] - 0.5) < 0.05
    score = _order(faceset, "score")
    assert [v for _, v in score] == sorted((v for _, v in score), reverse=True)


def test_identity_and_face_groups(faceset: Path):
    order = _order(faceset, "identity")
    assert {n for n, _ in order[:len(OBAMA)]} == set(OBAMA)  # the set's identity is the majority: Obama
    assert {n for n, _ in order[len(OBAMA):]} == {"biden", "astronaut"}
    assert _order(faceset, "identity", identity_refs=[str(DATA / "biden.jpg")])[0][0] == "biden"
    result = sort_faceset(faceset, "face", dry_run=True)
    groups = {_stem(r.face.path.name): r.group for r in result.ranked}
    assert {groups[n] for n in OBAMA} == {0}
    assert len({groups["biden"], groups["astronaut"], 0}) == 3


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
    assert [p.name[:5] for p in left] == ["00001", "00002"]  # no half file, no temporary file
    for p in left:
        read_face(p)


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


def test_faceset_summary(faceset: Path):
    code, output = _cli("faceset", str(faceset))
    assert code == 0, output
    assert "9 faces in 9 PNG files" in output and "Sources:  9 (0 videos, 9 photos)" in output
    assert "256 px, padding 0.4" in output and "1 group(s) of one person with 2+ faces (7 faces), 2 face(s) alone" in output
    assert "2 face(s) farther than 0.6" in output and "1 face(s) blurred" in output
    assert f"faceswap-lite sort {faceset} --by face" in output and "--by blur" in output


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
