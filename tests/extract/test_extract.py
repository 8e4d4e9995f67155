"""The extract pipeline and the ``extract`` command end to end, on real photos and a real video."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import faceswap_lite.faceset as faceset
from faceswap_lite.cli import main
from faceswap_lite.extract import ExtractOptions, plan_extract
from faceswap_lite.extract.align import eye_centres, template_in_crop, transform_points
from faceswap_lite.extract.detect import DetectorSpec
from faceswap_lite.extract.markers import DONE_DIR
from faceswap_lite.extract.pipeline import OutputError
from faceswap_lite.extract.sources import find_sources, read_image, source_key
from faceswap_lite.extract.worker import BAD_LANDMARKS, FrameWorker
from faceswap_lite.faceset import FaceMeta, list_faces, read_face, read_meta, write_face
from faceswap_lite.frames import TRUNCATED_VIDEO, UNREADABLE_IMAGE
from faceswap_lite.registry import DETECTORS

from ..helpers import EXPECTED_FACES, PHOTOS, error_line, extract, make_video, read_only


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["extract", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (face PNGs and done-markers) by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Photos: counts, alignment quality, metadata.


def test_faces_per_photo(photo_faces):
    summary, out = photo_faces
    names = [p.name for p in list_faces(out)]
    for photo, n in EXPECTED_FACES.items():
        key = source_key(PHOTOS / photo)
        assert sum(name.startswith(key + "_") for name in names) == n, photo
    assert summary.faces_written == sum(EXPECTED_FACES.values()) == len(names)
    assert summary.sources == summary.photos == len(EXPECTED_FACES) and summary.frames == len(EXPECTED_FACES)
    assert not summary.skipped_files and not summary.warnings


def test_eyes_land_on_the_template_and_are_level(photo_faces):
    _, out = photo_faces
    for path in list_faces(out):
        rgb, meta = read_face(path)
        assert rgb.shape == (256, 256, 3)
        left, right = eye_centres(meta.landmarks)
        t_left, t_right = eye_centres(template_in_crop(meta.size, meta.padding, meta.centering))
        assert np.linalg.norm(left - t_left) < 8 and np.linalg.norm(right - t_right) < 8, path.name
        angle = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
        assert abs(angle) < 5, f"{path.name}: eye line tilted {angle:.1f}°"


def test_metadata_describes_the_crop(photo_faces):
    _, out = photo_faces
    hog = DETECTORS.build("dlib-hog")
    path = next(p for p in list_faces(out) if p.name.startswith(source_key(PHOTOS / "obama.jpg")))
    rgb, meta = read_face(path)
    source = read_image(PHOTOS / "obama.jpg")
    assert meta.source == str(PHOTOS / "obama.jpg") and meta.frame is None and meta.face_index == 0
    assert meta.source_size == [source.shape[1], source.shape[0]]
    assert (meta.size, meta.padding, meta.centering) == (256, 0.4, 0.05)
    (det,) = hog.detect(source)
    assert meta.box == list(det.box) and meta.score == pytest.approx(det.score)
    # Landmarks are stored in crop pixels: the matrix maps the source landmarks onto them.
    source_lm = hog.landmarks(source, det.box)
    np.testing.assert_allclose(meta.landmarks, transform_points(meta.matrix, source_lm), atol=2e-3)
    corners = [[-0.5, -0.5], [source.shape[1] - 0.5, -0.5], [source.shape[1] - 0.5, source.shape[0] - 0.5],
               [-0.5, source.shape[0] - 0.5]]
    np.testing.assert_allclose(meta.valid_polygon, transform_points(meta.matrix, corners), atol=2e-3)
    # The crop holds the source's pixels where the matrix says (bilinear sample at a landmark).
    x, y = meta.landmarks[30]
    sx, sy = source_lm[30]
    assert np.abs(rgb[round(y), round(x)].astype(int) - source[round(sy), round(sx)].astype(int)).max() < 40


def test_metadata_round_trips_through_the_png(tmp_path: Path, photo_faces):
    _, out = photo_faces
    rgb, meta = read_face(list_faces(out)[0])
    write_face(tmp_path / "copy.png", rgb, meta)
    again = read_meta(tmp_path / "copy.png")
    assert again.to_json() == meta.to_json()
    raw = json.loads(Image.open(list_faces(out)[0]).info[faceset.CHUNK_KEY])  # the chunk, through Pillow
    assert raw["version"] == faceset.FORMAT_VERSION and len(raw["landmarks"]) == 68
    assert raw["centering"] == 0.05 and len(raw["valid_polygon"]) == 4
    old = FaceMeta.from_json(json.dumps({k: v for k, v in raw.items() if k != "centering"}))
    assert old.centering == 0.0  # files without the field still read
    bgr = cv2.imread(str(list_faces(out)[0]))  # another PNG reader sees the same pixels
    assert np.array_equal(bgr[:, :, ::-1], rgb)


def test_training_needs_only_the_pngs(tmp_path: Path, photo_faces):
    _, out = photo_faces
    copy = tmp_path / "curated"
    copy.mkdir()
    for p in list_faces(out)[1:]:  # a user deletes one face and copies the rest, markers left behind
        shutil.copy(p, copy / p.name)
    assert [read_face(p)[1].size for p in list_faces(copy)] == [256] * (len(list_faces(out)) - 1)


def test_photo_formats_and_geometry_options(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    bgr = read_image(PHOTOS / "biden.jpg")[:, :, ::-1]
    for ext in ("png", "webp", "bmp", "tif"):
        Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(src / f"biden_{ext}.{ext}")
    out = tmp_path / "out"
    summary = extract([src], out, size=128, padding=0.2, centering=0.0, fill=(0, 255, 0))
    assert summary.faces_written == 4
    for path in list_faces(out):
        rgb, meta = read_face(path)
        assert rgb.shape == (128, 128, 3) and meta.padding == 0.2 and meta.centering == 0.0


# ---------------------------------------------------------------------------------------------
# Video, parallel workers, re-runs.


def test_video_every_n_frames(tmp_path: Path, video: Path):
    out = tmp_path / "faces"
    summary = extract([video], out, every=4)
    names = [p.name for p in list_faces(out)]
    key = source_key(video)
    assert names == [f"{key}_{i:06d}_00.png" for i in range(0, 24, 4)]
    assert [read_meta(out / n).frame for n in names] == list(range(0, 24, 4))
    assert summary.frames == 6 and summary.videos == 1 and summary.faces_written == 6


def test_one_and_two_workers_write_identical_face_sets(tmp_path: Path, video: Path):
    inputs = [str(PHOTOS / "obama.jpg"), str(video), str(PHOTOS / "rocket.jpg"), str(PHOTOS / "biden.jpg")]
    code1, _ = cli(*inputs, "-o", str(tmp_path / "w1"), "--every", "3", "-j", "1")
    code2, text = cli(*inputs, "-o", str(tmp_path / "w2"), "--every", "3", "-j", "2")
    assert code1 == code2 == 0, text
    one, two = tree(tmp_path / "w1"), tree(tmp_path / "w2")
    assert len([k for k in one if k.endswith(".png")]) == 2 + 8
    assert one == two
    assert "with 2 workers" in text


def test_rerun_skips_done_sources_and_overwrite_redoes_them(tmp_path: Path):
    out = tmp_path / "faces"
    first = extract([PHOTOS / "obama.jpg", PHOTOS / "biden.jpg"], out)
    assert first.faces_written == 2
    stamp = {p.name: p.stat().st_mtime_ns for p in list_faces(out)}
    again = extract([PHOTOS / "obama.jpg", PHOTOS / "biden.jpg", PHOTOS / "astronaut.jpg"], out)
    assert (again.sources_done_before, again.faces_done_before, again.faces_written) == (2, 2, 1)
    assert all(p.stat().st_mtime_ns == stamp[p.name] for p in list_faces(out) if p.name in stamp)
    redo = extract([PHOTOS / "obama.jpg"], out, overwrite=True)
    assert (redo.sources_done_before, redo.faces_written) == (0, 1)
    with pytest.raises(OutputError, match="must not mix crop geometries"):
        plan_extract([str(PHOTOS / "obama.jpg")], out, ExtractOptions(size=128))
    with pytest.raises(OutputError, match="must not mix crop geometries"):  # other sources' faces stay
        plan_extract([str(PHOTOS / "obama.jpg")], out, ExtractOptions(size=128, overwrite=True))
    assert len(list_faces(out)) == 3
    plan_extract([str(PHOTOS / "biden.jpg"), str(PHOTOS / "obama.jpg"), str(PHOTOS / "astronaut.jpg")], out,
                 ExtractOptions(size=128, overwrite=True))  # redoing every source in the set is fine


def test_a_changed_source_is_redone_without_stale_faces(tmp_path: Path):
    src, out = tmp_path / "x.jpg", tmp_path / "faces"
    shutil.copy(PHOTOS / "obama.jpg", src)
    extract([src], out)
    a, b = read_image(PHOTOS / "biden.jpg"), read_image(PHOTOS / "obama.jpg")
    h = min(a.shape[0], b.shape[0])
    Image.fromarray(np.hstack([a[:h], b[:h]])).save(src, format="JPEG", quality=90)
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    summary = extract([src], out)
    assert summary.faces_written == 2 and len(list_faces(out)) == 2


# ---------------------------------------------------------------------------------------------
# Bad input.


def test_missing_input_is_an_error_and_nothing_is_written(tmp_path: Path):
    out = tmp_path / "faces"
    code, text = cli(str(PHOTOS / "obama.jpg"), str(tmp_path / "missing.jpg"), "-o", str(out), "-j", "1")
    assert code != 0 and "does not exist" in text and "missing.jpg" in text
    assert not out.exists()


def test_unwritable_output_is_an_error_and_nothing_is_written(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker, blocker / "faces"):
        code, text = cli(str(PHOTOS / "obama.jpg"), "-o", str(out), "-j", "1")
        assert code != 0 and "Error:" in text, text
        assert any(s in text for s in ("not a folder", "is a file", "cannot be created")), text
    assert blocker.read_text() == "x" and sorted(os.listdir(tmp_path)) == ["file"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_output_folder_is_an_error(tmp_path: Path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        code, text = cli(str(PHOTOS / "obama.jpg"), "-o", str(out), "-j", "1")
        assert code != 0 and "not writable" in text
    finally:
        out.chmod(0o700)


def test_read_only_output_folder_is_an_error_as_root_too(tmp_path: Path):
    """The twin that runs as root: a read-only mount, which os.access does not see."""
    with read_only(tmp_path / "ro") as out:
        for target in (out, out / "new"):
            code, text = cli(str(PHOTOS / "obama.jpg"), "-o", str(target), "-j", "1")
            assert code == 2 and "not writable" in error_line(text) and str(out) in text
        assert list(out.iterdir()) == []


def test_corrupt_photo_and_truncated_video_are_counted_and_skipped(tmp_path: Path, caplog):
    src = tmp_path / "in"
    src.mkdir()
    (src / "broken.jpg").write_bytes((PHOTOS / "obama.jpg").read_bytes()[:300])
    shutil.copy(PHOTOS / "biden.jpg", src / "biden.jpg")
    full = make_video(tmp_path / "full.avi", frames=12, fourcc="MJPG")
    (src / "cut.avi").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    summary = extract([src], tmp_path / "faces")
    assert summary.skipped_files == {UNREADABLE_IMAGE: 1, TRUNCATED_VIDEO: 1}
    assert 1 + 1 <= summary.faces_written < 1 + 12
    assert any("broken.jpg" in w for w in summary.warnings) and any("cut.avi" in w for w in summary.warnings)
    assert "broken.jpg" in caplog.text and "cut.avi" in caplog.text


def test_cli_reports_skips_and_exits_zero(tmp_path: Path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, text = cli(str(tmp_path / "broken.png"), str(PHOTOS / "obama.jpg"), "-o", str(tmp_path / "f"), "-j", "1")
    assert code == 0, text
    assert "Faces:   1 written" in text and "1 file: unreadable image" in text and "broken.png" in text


def test_no_face_anywhere_is_an_error(tmp_path: Path):
    code, text = cli(str(PHOTOS / "rocket.jpg"), "-o", str(tmp_path / "f"), "-j", "1")
    assert code != 0 and "no face found" in text


def test_bad_options_are_errors_before_anything_is_written(tmp_path: Path):
    out = tmp_path / "f"
    for args in (["--size", "8"], ["--every", "0"], ["-s", "upsampel=2"], ["-s", "nonsense"], ["--fill", "red"],
                 ["-j", "0"]):
        code, text = cli(str(PHOTOS / "obama.jpg"), "-o", str(out), *args)
        assert code != 0 and "Error:" in text, (args, text)
    assert not out.exists()


def test_landmark_sanity_check_rejects_and_counts(tmp_path: Path):
    summary = extract([PHOTOS / "obama.jpg", PHOTOS / "biden.jpg"], tmp_path / "f", max_fit_error=0.001)
    assert summary.faces_written == 0 and summary.skipped_faces[BAD_LANDMARKS] == 2
    assert summary.no_faces


class _ShuffledLandmarks:
    """A broken detector plugin: HOG boxes, but its landmarks come out in the wrong order."""

    def __init__(self) -> None:
        self.hog = DETECTORS.build("dlib-hog")

    def detect(self, rgb):
        return self.hog.detect(rgb)

    def landmarks(self, rgb, box):
        return np.roll(self.hog.landmarks(rgb, box), 10, axis=0)


def test_landmark_sanity_check_rejects_misplaced_landmarks_by_default(tmp_path: Path):
    DETECTORS.register("test-shuffled")(_ShuffledLandmarks)
    try:
        spec = DetectorSpec("test-shuffled")
        worker = FrameWorker(spec, ExtractOptions(), tmp_path)
        source = find_sources([PHOTOS / "obama.jpg"])[0]
        result = worker.process(source, None, None)
    finally:
        DETECTORS.unregister("test-shuffled")
    assert (result.found, result.written, dict(result.skipped)) == (1, [], {BAD_LANDMARKS: 1})
    assert list(tmp_path.iterdir()) == []


def test_filters_min_size_max_faces_min_score(tmp_path: Path):
    a, b = read_image(PHOTOS / "biden.jpg"), read_image(PHOTOS / "obama.jpg")
    h = min(a.shape[0], b.shape[0])
    pair = tmp_path / "pair.png"
    Image.fromarray(np.hstack([a[:h], b[:h]])).save(pair)
    one = extract([pair], tmp_path / "max1", max_faces=1)
    (meta,) = [read_meta(p) for p in list_faces(tmp_path / "max1")]
    assert one.skipped_faces == {"more than --max-faces in a frame": 1}
    assert meta.box[2] - meta.box[0] > 140  # the larger face (Biden's, ~155 px) is kept
    small = extract([pair], tmp_path / "min", min_size=130)
    assert small.faces_written == 1 and small.skipped_faces == {"face smaller than --min-size": 1}
    sure = extract([pair], tmp_path / "score", min_score=100.0)
    assert sure.faces_written == 0 and sure.skipped_faces == {"detector score below --min-score": 2}


def test_ctrl_c_leaves_only_whole_pngs_and_a_rerun_finishes(tmp_path: Path, monkeypatch):
    out = tmp_path / "faces"
    inputs = [PHOTOS / "obama.jpg", PHOTOS / "biden.jpg", PHOTOS / "astronaut.jpg"]
    real_save = Image.Image.save
    calls = {"n": 0}

    def save_then_interrupt(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # Ctrl-C in the middle of writing the second face
            fp.write(b"\x89PNG\r\n\x1a\n half a file")
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        extract(inputs, out)
    monkeypatch.undo()
    leftovers = sorted(p.name for p in out.iterdir() if p.is_file())
    assert leftovers == [f"{source_key(PHOTOS / 'obama.jpg')}_000000_00.png"]  # whole, no temp file
    read_face(out / leftovers[0])
    assert [p.name for p in (out / DONE_DIR).iterdir()] == [f"{source_key(PHOTOS / 'obama.jpg')}.json"]
    summary = extract(inputs, out)
    assert (summary.sources_done_before, summary.faces_written) == (1, 2)
    assert len(list_faces(out)) == 3


def test_user_detector_plugin_runs_in_the_workers(tmp_path: Path, clean_registry):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fixed_box.py").write_text(
        "from faceswap_lite.plugins.detectors.dlib_hog import DlibHog\n"
        "from faceswap_lite.registry import register_detector\n\n"
        "@register_detector('test-hog-first-face')\n"
        "class FirstFace(DlibHog):\n"
        "    '''HOG, but only the first face.'''\n"
        "    def detect(self, rgb):\n"
        "        return super().detect(rgb)[:1]\n"
    )
    code, text = cli(str(PHOTOS / "obama.jpg"), str(PHOTOS / "biden.jpg"), "-o", str(tmp_path / "f"), "-j", "2",
                     "--detector", "test-hog-first-face", "--plugins-dir", str(plugins))
    assert code == 0, text
    assert len(list_faces(tmp_path / "f")) == 2
    code, text = cli(str(PHOTOS / "obama.jpg"), "-o", str(tmp_path / "g"), "--detector", "dlib-hgo")
    assert code != 0 and "did you mean 'dlib-hog'" in text


def test_cli_defaults_are_the_pipeline_defaults():
    # cli.py keeps its imports lazy, so it repeats the defaults: they must not drift apart.
    from dataclasses import fields

    from faceswap_lite.cli.frames import extract_cmd

    defaults = {f.name: f.default for f in fields(ExtractOptions)}
    cli_defaults = {p.name: p.default for p in extract_cmd.params}
    for name in ("detector", "size", "padding", "centering", "every", "min_size", "max_faces", "min_score",
                 "max_fit_error", "workers"):
        assert cli_defaults[name] == defaults[name], name
    assert tuple(int(v) for v in cli_defaults["fill"].split(",")) == defaults["fill"]
