"""Alignment: Umeyama, the shipped template, the crop geometry, border handling."""

from __future__ import annotations

import json
from importlib import resources

import cv2
import numpy as np
import pytest

from faceswap_lite.extract.align import (
    ALIGN_POINTS,
    align_face,
    alignment_matrix,
    eye_centres,
    fit_error,
    mean_face,
    template_in_crop,
    transform_points,
    umeyama,
)

# dlib's mean face for points 17-67 (dlib/image_transforms/interpolation.h, get_face_chip_details;
# Boost Software License): an independent reference the derived template must agree with.
DLIB_MEAN_X = [
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004,
    0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737,
    0.187122, 0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751,
    0.719335, 0.254149, 0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127,
    0.42689,
]
DLIB_MEAN_Y = [
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915,
    0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326,
    0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423,
    0.244077, 0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182,
    0.831803, 0.824182,
]


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def valid_mask(polygon: np.ndarray, size: int, erode: int = 0) -> np.ndarray:
    """Boolean size×size mask of the polygon, shrunk (erode > 0) or grown (< 0) by |erode| pixels."""
    pad = abs(erode) + 1  # draw on a larger canvas so the crop's own edge does not stop the erosion
    mask = np.zeros((size + 2 * pad, size + 2 * pad), np.uint8)
    cv2.fillPoly(mask, [np.round((np.asarray(polygon) + pad) * 16).astype(np.int32)], 1, shift=4)
    kernel = np.ones((2 * abs(erode) + 1,) * 2, np.uint8)
    mask = cv2.erode(mask, kernel) if erode > 0 else cv2.dilate(mask, kernel) if erode < 0 else mask
    return mask[pad:-pad, pad:-pad].astype(bool)


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (51, 2))
    true = similarity(23.0, 1.7, -12.0, 40.0)
    np.testing.assert_allclose(umeyama(src, transform_points(true, src)), true, atol=1e-9)


def test_umeyama_never_reflects():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 1, (20, 2))
    mirrored = src * [-1, 1]
    m = umeyama(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_template_is_symmetric_level_and_normalised():
    t = mean_face()
    inner = t[ALIGN_POINTS]
    lo, hi = inner.min(0), inner.max(0)
    assert max(hi - lo) == pytest.approx(1.0, abs=1e-4)  # touches [0, 1] on its longer side
    np.testing.assert_allclose((lo + hi) / 2, [0.5, 0.5], atol=1e-4)  # centred
    left, right = eye_centres(t)
    assert left[1] == pytest.approx(right[1], abs=1e-4)  # eye line level
    assert (left[0] + right[0]) / 2 == pytest.approx(0.5, abs=1e-4)
    assert t[8, 1] > t[57, 1] > t[33, 1] > t[27, 1] > t[19, 1]  # chin below mouth below nose below brows


def test_template_agrees_with_dlibs_mean_face():
    ours = mean_face()[ALIGN_POINTS]
    theirs = np.stack([DLIB_MEAN_X, DLIB_MEAN_Y], 1)
    fitted = transform_points(umeyama(theirs, ours), theirs)
    rms = np.sqrt(((fitted - ours) ** 2).sum(1).mean())
    assert rms < 0.02, f"template differs from dlib's mean face by RMS {rms:.4f} box units"


def test_template_file_documents_its_derivation():
    doc = json.loads(resources.files("faceswap_lite.assets").joinpath("mean_face_68.json").read_text())
    assert "make_template.py" in doc["description"]
    assert doc["faces"]["used_with_mirrors"] >= 100


def test_crop_geometry():
    size, padding, centering = 256, 0.4, 0.05
    t = template_in_crop(size, padding, centering)
    side = 1 + 2 * padding
    # The inner box centre sits at the crop centre, moved down by `centering` box units.
    centre = (t[ALIGN_POINTS].min(0) + t[ALIGN_POINTS].max(0)) / 2
    np.testing.assert_allclose(centre, [(size - 1) / 2, (size - 1) / 2 + centering * size / side], atol=1e-6)
    assert 0 <= t[:, 1].min() and t[8, 1] < size - 1  # the chin is in the crop


def test_align_face_maps_landmarks_onto_the_template_exactly_for_the_template_shape():
    size, padding, centering = 128, 0.3, 0.1
    true = similarity(-15.0, 2.5, 300.0, 120.0)
    landmarks = transform_points(true, mean_face())  # a face with the mean shape, rotated and scaled
    rgb = np.full((600, 800, 3), 128, np.uint8)
    face = align_face(rgb, landmarks, size, padding, centering)
    np.testing.assert_allclose(face.landmarks, template_in_crop(size, padding, centering), atol=1e-3)
    assert face.fit_error < 1e-6
    assert fit_error(face.landmarks, size, padding, centering) < 1e-6


def test_border_gets_fill_colour_and_valid_polygon_marks_the_image():
    size = 100
    rgb = np.full((60, 80, 3), 200, np.uint8)
    # A face larger than the image: most of the crop is outside it.
    landmarks = transform_points(similarity(0.0, 60.0, 10.0, 10.0), mean_face())
    face = align_face(rgb, landmarks, size, 0.4, 0.05, fill=(255, 0, 255))
    corners = [[-0.5, -0.5], [79.5, -0.5], [79.5, 59.5], [-0.5, 59.5]]
    np.testing.assert_allclose(face.valid_polygon, transform_points(face.matrix, corners), atol=1e-3)
    inside = valid_mask(face.valid_polygon, size, erode=2)
    outside = ~valid_mask(face.valid_polygon, size, erode=-2)
    assert outside.any() and inside.any()
    assert (face.crop[outside] == [255, 0, 255]).all()
    assert (face.crop[inside] == 200).all()


def _big_face(h: int = 1536) -> np.ndarray:
    """Landmarks of a mean-shape face ~800 px wide in an h×h image: a crop of 128 shrinks it ~11×."""
    return transform_points(similarity(10.0, 800.0, h / 2, h / 2), mean_face() - 0.5)


def test_strong_downscale_is_antialiased():
    # A checkerboard of 2-pixel cells: bilinear warping alone aliases it, area pre-reduction averages it.
    yy, xx = np.mgrid[0:1536, 0:1536]
    rgb = np.repeat((((yy // 2 + xx // 2) % 2) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    face = align_face(rgb, _big_face(), 128, 0.4, 0.05)
    plain = cv2.warpAffine(rgb, face.matrix, (128, 128), flags=cv2.INTER_LINEAR)
    ours, ref = face.crop[24:104, 24:104], plain[24:104, 24:104]  # well inside the image
    assert abs(float(ours.mean()) - 127.5) < 5 and ours.std() < 10, "not averaged to grey"
    assert ref.std() > 4 * ours.std(), "the reference warp should alias"


def test_strong_downscale_lands_where_the_plain_warp_does():
    # On a smooth image both paths agree: the pre-reduction does not shift or scale the crop.
    yy, xx = np.mgrid[0:1536, 0:1536].astype(np.float64)
    blob = 255 * np.exp(-((xx - 700) ** 2 + (yy - 820) ** 2) / (2 * 150.0**2))
    rgb = np.stack([blob, 255 - blob, xx / 6.03], axis=2).astype(np.uint8)
    face = align_face(rgb, _big_face(), 128, 0.4, 0.05)
    plain = cv2.warpAffine(rgb, face.matrix, (128, 128), flags=cv2.INTER_LINEAR)
    inside = valid_mask(face.valid_polygon, 128, erode=3)  # at the image's edge the two may blend differently
    diff = np.abs(face.crop.astype(int) - plain.astype(int))[inside]
    assert inside.mean() > 0.8 and diff.mean() < 0.5 and diff.max() <= 2


def test_alignment_matrix_needs_68_points():
    with pytest.raises(ValueError, match="68"):
        alignment_matrix(np.zeros((5, 2)))
