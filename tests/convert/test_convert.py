"""convert end to end through the real CLI: video properties and audio, where pixels change,
--faces, colour matching, the provenance mark, bad input and Ctrl-C."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from faceswap_lite.convert.mark import PROVENANCE, read_photo_mark
from faceswap_lite.convert.options import ConvertOptions
from faceswap_lite.convert.pipeline import plan_convert, run_convert
from faceswap_lite.convert.video import read_comment
from faceswap_lite.data.masks import face_polygon
from faceswap_lite.extract.align import transform_points
from faceswap_lite.faceset import list_faces, read_meta
from faceswap_lite.train.checkpoint import load_checkpoint, save_checkpoint

from ..helpers import PHOTOS, sets
from .conftest import FPS, FRAMES, TINY, H, W, decode, make_clip, run_cli


def face_regions(faces: Path, size: tuple[int, int], grow: float) -> dict[int, np.ndarray]:
    """Per frame, the union of the face hulls (from the face set's landmarks, in source pixels),
    dilated by ``grow`` × the face height: a bool H×W map."""
    out: dict[int, np.ndarray] = {}
    for path in list_faces(faces):
        meta = read_meta(path)
        lm = transform_points(cv2.invertAffineTransform(meta.matrix), meta.landmarks)
        hull = cv2.convexHull(face_polygon(lm).astype(np.float32)).astype(np.int32)
        region = out.setdefault(int(meta.frame or 0), np.zeros(size[::-1], np.uint8))
        cv2.fillConvexPoly(region, hull, 1)
    for frame, region in out.items():
        r = max(1, int(grow * np.ptp(np.nonzero(region)[0])))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        out[frame] = cv2.dilate(region, kernel).astype(bool)
    return out


def audio_samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])


def test_video_keeps_frames_fps_size_audio_and_is_marked(clip, run, tmp_path):
    res = run_cli(["convert", clip, "-m", run, "-o", tmp_path / "out", "-j", "2"])  # detector processes
    out = tmp_path / "out" / "clip.mp4"
    assert f"Frames:  {FRAMES} (0 without a face" in res.output
    assert f"Faces:   {FRAMES} swapped" in res.output
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (W, H)
        assert v.average_rate == FPS
        assert c.metadata.get("comment") == PROVENANCE
        assert c.streams.audio, "the source's audio was dropped"
    assert len(decode(out)) == FRAMES
    # The AAC packets are copied, not re-encoded: the decoded tone is sample for sample the source's.
    src, got = audio_samples(clip), audio_samples(out)
    assert len(got) == len(src) and np.array_equal(got, src)
    assert not list((tmp_path / "out").glob(".*")), "a temporary file was left"


def test_frames_change_only_inside_the_face(clip, faces, run, tmp_path):
    run_cli(["convert", clip, "-m", run, "-o", tmp_path / "out", "--frames", "-j", "1"])
    frames = sorted((tmp_path / "out" / "clip").glob("*.png"))
    assert len(frames) == FRAMES
    source = decode(clip)
    regions = face_regions(faces, (W, H), grow=0.1)
    for i, path in enumerate(frames):
        assert read_photo_mark(path) == PROVENANCE
        got = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        changed = (got != source[i]).any(2)
        assert not changed[~regions[i]].any(), f"frame {i}: pixels outside the face changed"
        assert changed[regions[i]].mean() > 0.3, f"frame {i}: the face barely changed"


def test_faces_option_leaves_deleted_faces_untouched(clip, faces, run, tmp_path):
    curated = tmp_path / "curated"
    shutil.copytree(faces, curated)
    gone = [p for p in list_faces(curated) if read_meta(p).frame == 3]
    assert len(gone) == 1
    gone[0].unlink()
    res = run_cli(["convert", clip, "-m", run, "-o", tmp_path / "out", "--frames", "--faces", curated])
    assert f"Faces:   {FRAMES - 1} swapped" in res.output
    source = decode(clip)
    frames = sorted((tmp_path / "out" / "clip").glob("*.png"))
    got = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in frames]
    assert np.array_equal(got[3], source[3]), "the deleted face was swapped"
    assert not np.array_equal(got[4], source[4])


def _mean_colour_error(photo: Path, out: Path, faces: Path) -> float:
    """|mean colour of the output face − the source's| inside the face, averaged over RGB."""
    src = cv2.imread(str(photo)).astype(np.float64)
    got = cv2.imread(str(out)).astype(np.float64)
    region = face_regions(faces, (src.shape[1], src.shape[0]), grow=-0.0)[0]
    region = cv2.erode(region.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    return float(np.abs(got[region].mean(0) - src[region].mean(0)).mean())


def test_colour_matching_lowers_the_colour_difference(run, tmp_path):
    photo = tmp_path / "in" / "obama.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), cv2.imread(str(PHOTOS / "obama.jpg")))
    from faceswap_lite.extract import ExtractOptions, plan_extract, run_extract

    run_extract(plan_extract([str(photo)], tmp_path / "f", ExtractOptions(size=64, workers=1)))
    errors = {}
    for mode in ("none", "avg", "hist"):
        run_cli(["convert", photo, "-m", run, "-o", tmp_path / mode, "--color", mode, "-j", "1"])
        errors[mode] = _mean_colour_error(photo, tmp_path / mode / "obama.png", tmp_path / "f")
    assert errors["avg"] < 0.5 * errors["none"], errors
    assert errors["hist"] < 0.5 * errors["none"], errors


def test_photos_bad_files_and_marks(run, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(PHOTOS / "biden.jpg", inputs / "biden.jpg")
    cv2.imwrite(str(inputs / "obama.bmp"), cv2.imread(str(PHOTOS / "obama2.jpg")))
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    make_clip(inputs / "nobody.mp4", photo="rocket.jpg", frames=4, tone=False)
    res = run_cli(["convert", inputs, "-m", run, "-o", tmp_path / "out", "--watermark", "SYNTHETIC",
                   "--blend", "seamless", "-j", "1"])
    out = tmp_path / "out"
    assert "Skipped: 1 file: unreadable image" in res.output
    assert "broken.jpg" in res.output and "No face: " in res.output and "nobody.mp4" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["biden.jpg", "nobody.mp4", "obama.png"]
    assert read_photo_mark(out / "biden.jpg") == PROVENANCE
    assert read_photo_mark(out / "obama.png") == PROVENANCE  # BMP holds no metadata: written as PNG
    assert read_comment(out / "nobody.mp4") == PROVENANCE
    assert len(decode(out / "nobody.mp4")) == 4
    # The watermark is drawn: the bottom-left corner is dark with white text, unlike the source.
    corner = cv2.imread(str(out / "obama.png"))[-12:, :40]
    assert corner.min() < 30 and corner.max() > 200


def test_truncated_video_is_named_and_the_rest_converted(run, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    good = make_clip(inputs / "good.mkv", frames=8, tone=False)
    data = good.read_bytes()
    (inputs / "cut.mkv").write_bytes(data[: len(data) * 9 // 10])  # the last frames are cut off
    res = run_cli(["convert", inputs, "-m", run, "-o", tmp_path / "out", "-j", "1"])
    assert "Skipped: 1 file: truncated video (the frames that decode were converted): " in res.output
    assert "cut.mkv" in res.output
    assert len(decode(tmp_path / "out" / "good.mkv")) == 8
    assert 0 < len(decode(tmp_path / "out" / "cut.mkv")) < 8


@pytest.mark.parametrize("case", ["no checkpoint", "no such side", "no geometry", "output is a file",
                                  "threshold 0"])
def test_bad_requests_fail_in_one_line_and_write_nothing(case, clip, run, tmp_path):
    model, out, extra = run, tmp_path / "out", []
    if case == "no checkpoint":
        model = tmp_path / "empty_run"
        (model / "checkpoints").mkdir(parents=True)
        expected = "no checkpoint"
    elif case == "no such side":
        extra, expected = ["--to", "b"], "has side(s) a"
    elif case == "no geometry":
        state = load_checkpoint(run / "checkpoints" / "last.pt")
        state.pop("geometry", None)
        state["faces"] = {"a": str(tmp_path / "deleted_faces")}
        model = tmp_path / "old.pt"
        save_checkpoint(model, {k: v for k, v in state.items() if k != "format_version"})
        expected = "--faces FACESET"
    elif case == "threshold 0":
        extra, expected = ["--identity-threshold", "0"], "--identity-threshold must be > 0"
    else:
        out.write_text("not a folder")
        expected = "not a folder"
    res = run_cli(["convert", clip, "-m", model, "-o", out, *extra], expect=2)
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and expected in lines[0], res.output
    assert case == "output is a file" or not out.exists()


def test_ctrl_c_leaves_no_half_video(clip, run, tmp_path):
    plan = plan_convert([str(clip)], tmp_path / "out", run, ConvertOptions(workers=1))
    calls = []

    def interrupt(frames: int, faces: int) -> None:
        calls.append(frames)
        if len(calls) == 3:
            raise KeyboardInterrupt

    summary = run_convert(plan, progress=interrupt)
    assert summary.interrupted and summary.written == []
    assert list((tmp_path / "out").iterdir()) == []


def test_default_side_is_b_of_a_two_side_model():
    from faceswap_lite.convert.model import choose_side

    assert choose_side(["a", "b"], None) == "b" and choose_side(["a", "b"], "a") == "a"
    assert choose_side(["a"], None) == "a"


def test_geometry_falls_back_to_the_face_sets_the_checkpoint_names(run, faces, tmp_path):
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["geometry"]["a"] == {"size": 64, "padding": 0.4, "centering": 0.05}
    del state["geometry"]  # a checkpoint from before train recorded it
    old = tmp_path / "old.pt"
    save_checkpoint(old, {k: v for k, v in state.items() if k != "format_version"})
    from faceswap_lite.convert.model import load_model

    loaded = load_model(old)
    assert loaded.geometry == (64, 0.4, 0.05) and loaded.geometry_from == f"face set {state['faces']['a']}"


def test_identity_swaps_only_that_person(run, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("biden", "obama2"):
        cv2.imwrite(str(inputs / f"{name}.png"), cv2.imread(str(PHOTOS / f"{name}.jpg")))
    res = run_cli(["convert", inputs, "-m", run, "-o", tmp_path / "out", "--identity", PHOTOS / "obama.jpg",
                   "-j", "1"])
    assert "Faces:   1 swapped" in res.output
    same = lambda name: np.array_equal(cv2.imread(str(inputs / name)), cv2.imread(str(tmp_path / "out" / name)))  # noqa: E731
    assert same("biden.png") and not same("obama2.png")


def test_a_learned_mask_is_used_when_the_model_has_one():
    from faceswap_lite.convert.model import Geometry, LoadedModel, swap_batch
    from faceswap_lite.registry import MODELS

    model = MODELS.build("original", {"width": 0.03125, "latent": 32, "learn_mask": True}, sides=("a",)).eval()
    loaded = LoadedModel(model, "a", Geometry(64, 0.4, 0.05), "test", Path("x.pt"), 0,
                         torch.device("cpu"), 64)
    assert loaded.learns_mask
    face, mask = swap_batch(loaded, torch.rand(2, 3, 64, 64))
    assert face.shape == (2, 3, 64, 64) and mask is not None and mask.shape == (2, 1, 64, 64)


def test_a_run_with_averaged_weights_converts_with_them(faces, tmp_path):
    """train.ema: convert uses the average unless --raw-weights (the two differ inside the face)."""
    run = tmp_path / "ema-run"
    run_cli(["train", "-A", faces, "-o", run, "-c", "cpu-quick", *sets([*TINY, "train.ema=0.5"])])
    photo = tmp_path / "in" / "biden.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), cv2.imread(str(PHOTOS / "biden.jpg")))
    run_cli(["convert", photo, "-m", run, "-o", tmp_path / "ema", "-j", "1"])
    run_cli(["convert", photo, "-m", run, "-o", tmp_path / "raw", "-j", "1", "--raw-weights"])
    ema, raw = (cv2.imread(str(tmp_path / d / "biden.png")) for d in ("ema", "raw"))
    assert ema.shape == raw.shape and np.abs(ema.astype(int) - raw.astype(int)).max() > 0
