"""sort's keys (:mod:`faceswap_lite.sort.order`, :mod:`.measures`): each orders the known faces as it should."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceswap_lite.extract import ExtractOptions, plan_extract, run_extract
from faceswap_lite.sort import sort_faceset

from ..helpers import PHOTOS
from .conftest import OBAMA, _order, _stem


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

    rgb = read_image(PHOTOS / "obama.jpg")
    (landmarks,) = find_faces(detector_for(DetectorSpec.check("dlib-hog")), rgb)
    photos = tmp_path / "photos"
    photos.mkdir()
    bgr = cv2.imread(str(PHOTOS / "obama.jpg"))
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
    assert _order(faceset, "identity", identity_refs=[str(PHOTOS / "biden.jpg")])[0][0] == "biden"
    result = sort_faceset(faceset, "face", dry_run=True)
    groups = {_stem(r.face.path.name): r.group for r in result.ranked}
    assert {groups[n] for n in OBAMA} == {0}
    assert len({groups["biden"], groups["astronaut"], 0}) == 3
