"""Blending pieces on real pixels: the paste touches only the mask, colour matching moves the mean."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap_lite.convert import blend
from faceswap_lite.extract.align import align_face
from faceswap_lite.extract.detect import DetectorSpec, detector_for
from faceswap_lite.extract.sources import read_image

from ..helpers import PHOTOS


@pytest.fixture(scope="module")
def biden():
    """tests/photos/biden.jpg and its face aligned into a 128 px crop."""
    size = 128
    rgb = read_image(PHOTOS / "biden.jpg")
    detector = detector_for(DetectorSpec.check("dlib-hog"))
    (det,) = detector.detect(rgb)
    return rgb, align_face(rgb, np.asarray(detector.landmarks(rgb, det.box), dtype=np.float64), size)


def test_paste_changes_only_pixels_under_the_mask(biden):
    rgb, face = biden
    mask = blend.refine_mask(blend.face_mask(face.landmarks, 128, face.valid_polygon), 0.03, 0.03)
    frame = rgb.copy()
    assert blend.paste(frame, np.zeros((128, 128, 3), np.float32), mask, face.matrix)
    inv = cv2.invertAffineTransform(face.matrix)
    warped = cv2.warpAffine(mask, inv, rgb.shape[1::-1], flags=cv2.INTER_LINEAR)
    changed = (frame != rgb).any(2)
    assert changed.any() and not changed[warped == 0].any()
    assert (frame[warped > 0.99] <= 3).all()  # fully inside: the (black) face replaced the pixels


def test_avg_colour_matching_moves_the_lab_mean_onto_the_target(biden):
    _, face = biden
    target = face.crop.astype(np.float32) / 255.0
    mask = blend.face_mask(face.landmarks, 128)
    grey = np.full_like(target, 0.5)
    out = blend.match_color(grey, target, mask, "avg")
    inside = mask > 0.5
    lab = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2Lab)[inside].mean(0)  # noqa: E731
    assert np.abs(lab(out) - lab(target)).max() < 2.0
    assert np.array_equal(blend.match_color(grey, target, mask, "none"), grey)
