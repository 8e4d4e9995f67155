"""Augmentation: seeded and reproducible, geometry right, the warp moves pixels but stays smooth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap_lite.config import AugmentConfig
from faceswap_lite.data.augment import Augmenter, random_affine, random_warp, sample_rng, warp_maps
from tools.synthetic_faces import draw_face, template_landmarks

SIZE = 64


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return draw_face(np.random.default_rng(0), SIZE, template_landmarks(SIZE))


ALL_ON = AugmentConfig(rotation=15.0, scale=0.1, shift=0.1, flip=0.5, lightness=1.0, color=1.0, clahe=0.5,
                       warp=1.0, warp_grid=5, warp_strength=0.03)


def test_sample_rng_is_a_pure_function_of_its_key():
    a = sample_rng(1, 2, 3).random(4)
    np.testing.assert_array_equal(a, sample_rng(1, 2, 3).random(4))
    for other in (sample_rng(2, 2, 3), sample_rng(1, 3, 3), sample_rng(1, 2, 4), sample_rng(1, 2, 3, stream=1)):
        assert not np.array_equal(a, other.random(4))
    sample_rng(-1, 0, 0)  # negative seeds are fine


def test_same_seed_same_sample_other_seed_differs(face):
    aug = Augmenter(ALL_ON)
    t1, i1, m1 = aug(face, sample_rng(7, 0, 5))
    t2, i2, m2 = Augmenter(ALL_ON)(face, sample_rng(7, 0, 5))  # a fresh augmenter: no hidden state
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(m1, m2)
    t3, i3, _ = aug(face, sample_rng(8, 0, 5))
    assert not np.array_equal(t1, t3) and not np.array_equal(i1, i3)
    # Interleaving other samples does not change a sample (no state carried between calls).
    aug(face, sample_rng(9, 9, 9))
    np.testing.assert_array_equal(aug(face, sample_rng(7, 0, 5))[1], i1)
    assert t1.dtype == np.uint8 and t1.shape == face.shape and i1.shape == face.shape


def test_colour_changes_colours_and_is_seeded(face):
    cfg = AugmentConfig(rotation=0, scale=0, shift=0, flip=0, lightness=1.0, color=1.0, clahe=0.0, warp=0.0)
    aug = Augmenter(cfg)
    target, model_input, matrix = aug(face, sample_rng(0, 0, 0))
    assert matrix is None and model_input is target
    assert np.abs(target.astype(int) - face).mean() > 1.0
    means = {tuple(np.round(aug(face, sample_rng(s, 0, 0))[0].mean((0, 1)), 2)) for s in range(6)}
    assert len(means) == 6


def test_no_augmentation_is_identity(face):
    cfg = AugmentConfig(rotation=0, scale=0, shift=0, flip=0, lightness=0, color=0, clahe=0, warp=0)
    target, model_input, matrix = Augmenter(cfg)(face, sample_rng(0, 0, 0))
    np.testing.assert_array_equal(target, face)
    assert model_input is target and matrix is None


def test_flip_matrix_mirrors(face):
    cfg = AugmentConfig(rotation=0, scale=0, shift=0, flip=1.0)
    m = random_affine(np.random.default_rng(0), SIZE, cfg)
    out = cv2.warpAffine(face, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    np.testing.assert_array_equal(out, face[:, ::-1])


def test_affine_limits():
    cfg = AugmentConfig(rotation=10.0, scale=0.05, shift=0.05, flip=0.0)
    c = (SIZE - 1) / 2
    for s in range(200):
        m = random_affine(np.random.default_rng(s), SIZE, cfg)
        zoom = np.sqrt(abs(np.linalg.det(m[:, :2])))
        angle = np.degrees(np.arctan2(m[1, 0], m[0, 0]))
        centre = m[:, :2] @ [c, c] + m[:, 2] - c
        assert 0.95 - 1e-9 <= zoom <= 1.05 + 1e-9 and abs(angle) <= 10 + 1e-9
        assert np.all(np.abs(centre) <= 0.05 * SIZE + 1e-9)


def test_warp_moves_pixels_but_is_smooth(face):
    grid, strength = 5, 0.03
    base = np.arange(SIZE, dtype=np.float32)
    for seed in range(20):
        map_x, map_y = warp_maps(np.random.default_rng(seed), SIZE, grid, strength)
        dx, dy = map_x - base[None, :], map_y - base[:, None]
        rms = float(np.sqrt(np.mean(dx**2 + dy**2) / 2))
        assert 0.1 * strength * SIZE < rms < 1.5 * strength * SIZE  # of the order of σ
        # Smooth: neighbouring pixels move almost together, and the map never folds (Jacobian > 0).
        gxx, gxy = np.gradient(map_x, axis=1), np.gradient(map_x, axis=0)
        gyx, gyy = np.gradient(map_y, axis=1), np.gradient(map_y, axis=0)
        assert max(np.abs(g).max() for g in (gxx - 1, gxy, gyx, gyy - 1)) < 0.5
        assert (gxx * gyy - gxy * gyx).min() > 0.3
    warped = random_warp(face, np.random.default_rng(0), grid, strength)
    assert np.abs(warped.astype(int) - face).mean() > 2.0

    def roughness(img: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(img.astype(np.float32), cv2.CV_32F)).mean())

    # The warp resamples the image: no new high-frequency content appears.
    assert roughness(warped) < 1.05 * roughness(face)
    np.testing.assert_array_equal(random_warp(face, np.random.default_rng(0), grid, 0.0), face)


def test_warp_probability():
    cfg = AugmentConfig(rotation=0, scale=0, shift=0, flip=0, lightness=0, color=0, warp=0.5)
    img = draw_face(np.random.default_rng(1), SIZE, template_landmarks(SIZE))
    warped = [not np.array_equal(*Augmenter(cfg)(img, sample_rng(0, 0, i))[:2]) for i in range(200)]
    assert 60 < sum(warped) < 140
