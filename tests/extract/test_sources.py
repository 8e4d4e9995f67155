"""Sources: finding photos and videos, reading every supported format, decoding (truncated) videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap_lite.errors import FaceswapLiteError
from faceswap_lite.extract.sources import (
    InputError,
    SourceReadError,
    VideoReader,
    find_sources,
    read_image,
    source_key,
    video_frame_count,
)

from ..helpers import PHOTOS, make_video


def test_folders_are_recursive_sorted_and_skip_hidden_other_and_output(tmp_path: Path):
    root = tmp_path / "in"
    for rel in ["b.jpg", "a/z.png", "a/y.mp4", "c/.hidden.jpg", ".cache/x.jpg", "notes.txt", "out/f.png"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    sources = find_sources([root], exclude=root / "out")
    assert [s.path.relative_to(root).as_posix() for s in sources] == ["a/y.mp4", "a/z.png", "b.jpg"]
    assert [s.kind for s in sources] == ["video", "image", "image"]


def test_inputs_keep_their_order_and_each_file_comes_once(tmp_path: Path):
    a, b = tmp_path / "a.JPG", tmp_path / "b.webm"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    sources = find_sources([b, a, tmp_path, a])
    assert [s.path.name for s in sources] == ["b.webm", "a.JPG"]


def test_same_stem_in_two_folders_gets_two_keys(tmp_path: Path):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "face.jpg").write_bytes(b"x")
    keys = [s.key for s in find_sources([tmp_path])]
    assert len(set(keys)) == 2 and all(k.startswith("face-") for k in keys)
    assert source_key(tmp_path / "x" / "face.jpg") == keys[0]  # stable


def test_hidden_or_odd_stems_make_visible_safe_names(tmp_path: Path):
    assert not source_key(tmp_path / ".x y:z.jpg").startswith(".")
    assert " " not in source_key(tmp_path / ".x y:z.jpg") and ":" not in source_key(tmp_path / "a:b.jpg")


def test_missing_input_and_unsupported_file_are_errors(tmp_path: Path):
    with pytest.raises(InputError, match="does not exist"):
        find_sources([tmp_path / "nope.jpg"])
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match="not a photo or video"):
        find_sources([tmp_path / "notes.txt"])
    assert issubclass(InputError, FaceswapLiteError)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp", ".tiff"])
def test_every_photo_format_reads_as_rgb(tmp_path: Path, ext: str):
    bgr = cv2.imread(str(PHOTOS / "biden.jpg"))
    path = tmp_path / f"biden{ext}"
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else []  # 101: lossless
    assert cv2.imwrite(str(path), bgr, params)
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == bgr.shape
    # The same pixels, in RGB order (jpg is re-encoded: allow its loss).
    tol = 12 if ext == ".jpg" else 0
    assert np.abs(rgb.astype(int) - bgr[:, :, ::-1].astype(int)).mean() <= tol


def test_grey_and_16_bit_photos_become_rgb_uint8(tmp_path: Path):
    grey = cv2.imread(str(PHOTOS / "obama.jpg"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    cv2.imwrite(str(tmp_path / "d.png"), grey.astype(np.uint16) * 257)
    for name in ("g.png", "d.png"):
        rgb = read_image(tmp_path / name)
        assert rgb.shape == (*grey.shape, 3) and rgb.dtype == np.uint8


def test_corrupt_photo_raises_source_read_error(tmp_path: Path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(SourceReadError):
        read_image(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(SourceReadError):
        read_image(empty)


def test_video_frames_and_every(tmp_path: Path, video: Path):
    assert video_frame_count(video) == 24
    reader = VideoReader(video, every=5)
    frames = list(reader)
    assert [i for i, _ in frames] == [0, 5, 10, 15, 20]
    assert frames[0][1].shape == (240, 320, 3) and frames[0][1].dtype == np.uint8
    assert reader.decoded == 24 and not reader.truncated
    # RGB, not BGR: the photo's (red) tie region is redder than it is blue.
    ref = cv2.imread(str(PHOTOS / "obama.jpg"))[:240, :320, ::-1].astype(int)
    assert np.abs(frames[0][1].astype(int) - ref).mean() < 12


@pytest.mark.parametrize("fourcc,ext", [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_both_test_codecs_work_with_headless_opencv(tmp_path: Path, fourcc: str, ext: str):
    path = make_video(tmp_path / f"v{ext}", frames=6, fourcc=fourcc)
    assert len(list(VideoReader(path))) == 6


def test_truncated_video_yields_the_frames_that_decode(tmp_path: Path):
    full = make_video(tmp_path / "full.avi", frames=20, fourcc="MJPG")
    cut = tmp_path / "cut.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    reader = VideoReader(cut)
    frames = list(reader)
    assert 0 < len(frames) < 20
    assert reader.truncated and reader.declared == 20


def test_unreadable_video_raises_source_read_error(tmp_path: Path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with pytest.raises(SourceReadError):
        list(VideoReader(bad))
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    with pytest.raises(SourceReadError):
        list(VideoReader(empty))
