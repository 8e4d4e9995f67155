"""Landmark masks: regions cover the right landmarks, nest, respect the valid polygon and the affine."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap_lite.data.masks import MASK_NAMES, face_polygon, landmark_masks, valid_area
from tools.synthetic_faces import template_landmarks

SIZE = 64


def _hull_mask(points: np.ndarray, size: int, erode: int = 0) -> np.ndarray:
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(canvas, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    if erode:
        canvas = cv2.erode(canvas, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return canvas.astype(bool)


@pytest.fixture(scope="module")
def lm() -> np.ndarray:
    return template_landmarks(SIZE)


def test_shape_dtype_range(lm):
    masks = landmark_masks(lm, SIZE, blur=0.05)
    assert masks.shape == (3, SIZE, SIZE) and masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    assert MASK_NAMES == ("face", "eyes", "mouth")


def test_face_covers_landmark_hull_and_forehead(lm):
    face = landmark_masks(lm, SIZE, blur=0.0)[0]
    inside = _hull_mask(lm[:27], SIZE, erode=1)
    assert inside.sum() > 500
    assert face[inside].min() > 0.99
    # The forehead above the brows is face too, and the corners of the crop are not.
    brow_top = lm[17:27, 1].min()
    x = int(round(lm[27, 0]))
    assert face[int(brow_top) - 3, x] > 0.99
    assert face[0, 0] == 0 and face[-1, -1] == 0 and face[-1, 0] == 0
    # Every point of the extended polygon lies at or beyond the jaw/brow hull.
    assert len(face_polygon(lm)) == 37


def test_eyes_and_mouth_inside_face_and_on_their_landmarks(lm):
    face, eyes, mouth = landmark_masks(lm, SIZE, blur=0.03)
    assert np.all(eyes <= face) and np.all(mouth <= face)
    for c in (lm[36:42].mean(0), lm[42:48].mean(0)):
        assert eyes[int(round(c[1])), int(round(c[0]))] > 0.9
    c = lm[48:60].mean(0)
    assert mouth[int(round(c[1])), int(round(c[0]))] > 0.9
    # Eye regions are dilated beyond the eye hull, but stay well inside the face.
    hard = landmark_masks(lm, SIZE, blur=0.0)
    assert hard[1].sum() > _hull_mask(lm[36:42], SIZE).sum() + _hull_mask(lm[42:48], SIZE).sum()
    assert hard[1].sum() < 0.2 * hard[0].sum()
    assert (np.minimum(hard[1], hard[2]) > 0.5).sum() == 0  # eyes and mouth do not overlap


def test_outside_valid_polygon_is_zero(lm):
    # The source image ended at x = 25.3 (the left of the crop is fill colour).
    poly = np.array([[25.3, -5.0], [80.0, -5.0], [80.0, 80.0], [25.3, 80.0]], np.float32)
    masks = landmark_masks(lm, SIZE, poly, blur=0.05)
    free = landmark_masks(lm, SIZE, None, blur=0.05)
    assert np.all(masks[:, :, :26] == 0)  # pixel centres x <= 25 are outside
    np.testing.assert_array_equal(masks[0, :, 26:], free[0, :, 26:])
    assert masks[0, :, 26:].max() > 0.99


def test_face_false_is_the_valid_area(lm):
    poly = np.array([[10.0, 0.0], [63.0, 0.0], [63.0, 63.0], [10.0, 63.0]], np.float32)
    masks = landmark_masks(lm, SIZE, poly, face=False)
    np.testing.assert_array_equal(masks[0], valid_area(SIZE, poly))
    assert masks[0][:, :10].max() == 0 and masks[0][:, 10:].min() == 1
    assert landmark_masks(lm, SIZE, face=False)[0].min() == 1.0


def test_blur_feathers_the_edges(lm):
    hard = landmark_masks(lm, SIZE, blur=0.0)[0]
    soft = landmark_masks(lm, SIZE, blur=0.1)[0]
    soft_edge = ((soft > 0.05) & (soft < 0.95)).sum()
    hard_edge = ((hard > 0.05) & (hard < 0.95)).sum()
    assert soft_edge > 3 * hard_edge
    assert abs(soft.sum() - hard.sum()) < 0.1 * hard.sum()  # area kept roughly


def test_matrix_maps_regions_like_the_image():
    """Masks drawn through an integer shift equal the shifted masks (regions mapped, not resampled)."""
    size = 96
    lm = template_landmarks(64) + 16.0  # a face in the middle of a 96 px crop
    plain = landmark_masks(lm, size, blur=0.0)
    shift = np.array([[1.0, 0.0, 7.0], [0.0, 1.0, -5.0]])
    moved = landmark_masks(lm, size, blur=0.0, matrix=shift)
    np.testing.assert_allclose(moved[:, :-5, 7:], plain[:, 5:, :-7], atol=1e-6)
    # A horizontal flip mirrors the (symmetric) regions.
    flip = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]])
    mirrored = landmark_masks(lm, size, blur=0.0, matrix=flip)
    expected = landmark_masks(lm * [-1, 1] + [size - 1, 0], size, blur=0.0)
    # OpenCV's anti-aliased edges are not mirror-exact: edge pixels differ by a few /255.
    np.testing.assert_allclose(mirrored, expected, atol=10 / 255)
    np.testing.assert_allclose(mirrored, plain[:, :, ::-1], atol=10 / 255)


def test_matrix_masks_out_area_brought_in_from_outside_the_crop(lm):
    shift = np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 0.0]])  # content moves right; x < 10 is replicated
    face = landmark_masks(lm, SIZE, blur=0.05, face=False, matrix=shift)[0]
    assert face[:, :10].max() == 0 and face[:, 10:].min() == 1
