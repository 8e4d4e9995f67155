"""The dlib detector plugins: registration, settings, faces per photo, landmarks, the CNN detector."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap_lite.errors import PluginError
from faceswap_lite.extract.detect import Detection, Detector, DetectorSpec
from faceswap_lite.extract.sources import read_image
from faceswap_lite.registry import DETECTORS

from ..helpers import EXAMPLES, EXPECTED_FACES, PHOTOS, plugin_names


@pytest.fixture(scope="module")
def hog() -> Detector:
    return DETECTORS.build("dlib-hog")


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_both_dlib_detectors_are_registered_plugins():
    DetectorSpec.check("dlib-hog")
    assert {"dlib-hog", "dlib-cnn"} <= set(DETECTORS.names())
    assert isinstance(DETECTORS.build("dlib-hog"), Detector)


def test_settings_are_checked_with_a_suggestion():
    with pytest.raises(PluginError, match="did you mean 'upsample'"):
        DetectorSpec.check("dlib-hog", {"upsampel": 1})
    with pytest.raises(PluginError, match="must be int"):
        DetectorSpec.check("dlib-hog", {"upsample": "two"})
    with pytest.raises(PluginError, match="upsample must be 0..4"):
        DETECTORS.build("dlib-hog", {"upsample": 9})
    # An unknown name (which loads every plugin) is checked in test_extract's plugin test.


@pytest.mark.parametrize("name", plugin_names("detectors"))
def test_contract_on_a_real_photo(clean_registry, name: str):
    """Every registered detector (a user's too): boxes inside the photo, float scores, 68 landmarks.

    The photo is a 256×256 crop (the astronaut's head and shoulders, face ~90 px) so that a slow
    detector (dlib's CNN on a CPU) takes about a second."""
    clean_registry.load_plugins([EXAMPLES])
    rgb = np.ascontiguousarray(read_image(PHOTOS / "astronaut.jpg")[0:256, 96:352])
    detector = DETECTORS.build(name)
    assert isinstance(detector, Detector)
    found = list(detector.detect(rgb))
    assert found, f"{name} found no face in a photo with one"
    for det in found:
        x0, y0, x1, y1 = det.box
        assert -0.5 * rgb.shape[1] < x0 < x1 < 1.5 * rgb.shape[1] and -0.5 * rgb.shape[0] < y0 < y1 < 1.5 * rgb.shape[0]
        assert isinstance(det.score, float)
    lm = np.asarray(detector.landmarks(rgb, found[0].box))
    assert lm.shape == (68, 2) and np.isfinite(lm).all()


@pytest.mark.parametrize("name", sorted(EXPECTED_FACES))
def test_faces_per_photo(hog: Detector, name: str):
    found = hog.detect(read_image(PHOTOS / name))
    assert len(found) == EXPECTED_FACES[name], found
    for det in found:
        assert isinstance(det, Detection) and det.score > 0.5


def test_two_photos_side_by_side_give_two_faces(hog: Detector):
    a, b = read_image(PHOTOS / "biden.jpg"), read_image(PHOTOS / "obama.jpg")
    h = min(a.shape[0], b.shape[0])
    found = hog.detect(np.hstack([a[:h], b[:h]]))
    assert len(found) == 2
    assert sorted(d.box[0] < a.shape[1] for d in found) == [False, True]  # one in each half


def test_landmarks_are_68_points_inside_the_box(hog: Detector):
    rgb = read_image(PHOTOS / "obama.jpg")
    (det,) = hog.detect(rgb)
    lm = hog.landmarks(rgb, det.box)
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    x0, y0, x1, y1 = det.box
    w = x1 - x0
    assert (lm[:, 0] > x0 - 0.2 * w).all() and (lm[:, 0] < x1 + 0.2 * w).all()
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()  # eye 36-41 on the image's left
    assert lm[19, 1] < lm[30, 1] < lm[57, 1] < lm[8, 1]  # brow, nose tip, lower lip, chin: top to bottom


def test_upsample_finds_smaller_faces(hog: Detector):
    small = cv2.resize(read_image(PHOTOS / "obama.jpg"), (160, 200), interpolation=cv2.INTER_AREA)
    assert len(DETECTORS.build("dlib-hog", {"upsample": 0}).detect(small)) == 0  # face ~45 px: too small
    assert len(hog.detect(small)) == 1  # default upsample 1


def test_cnn_detector_on_one_small_photo(hog: Detector):
    # dlib's CNN is slow on CPU (seconds per 0.1 Mpx): one 256×256 photo (the astronaut's head and
    # shoulders, face ~90 px), no upsampling.
    rgb = np.ascontiguousarray(read_image(PHOTOS / "astronaut.jpg")[0:256, 96:352])
    cnn = DETECTORS.build("dlib-cnn")
    found = cnn.detect(rgb)
    assert len(found) == 1
    (ref,) = hog.detect(rgb)
    assert iou(found[0].box, ref.box) > 0.5
    assert cnn.landmarks(rgb, found[0].box).shape == (68, 2)
