"""Landmark smoothing: less jitter on a still face, no lag on a steady pan (real landmarks)."""

from __future__ import annotations

import numpy as np
import pytest

from faceswap_lite.convert.smooth import FaceTracks
from faceswap_lite.extract.detect import DetectorSpec, detector_for
from faceswap_lite.extract.sources import read_image

from ..helpers import PHOTOS

FPS = 25.0


@pytest.fixture(scope="module")
def landmarks() -> np.ndarray:
    """dlib's 68 landmarks of the face in tests/photos/obama.jpg (source pixels)."""
    rgb = read_image(PHOTOS / "obama.jpg")
    detector = detector_for(DetectorSpec.check("dlib-hog"))
    (det,) = detector.detect(rgb)
    return np.asarray(detector.landmarks(rgb, det.box), dtype=np.float64)


def motion(track: list[np.ndarray]) -> float:
    """Mean landmark displacement between consecutive frames, pixels."""
    return float(np.mean([np.linalg.norm(b - a, axis=1).mean() for a, b in zip(track, track[1:])]))


def smoothed(track: list[np.ndarray]) -> list[np.ndarray]:
    tracks = FaceTracks(FPS)
    return [tracks.update(i, [lm])[0] for i, lm in enumerate(track)]


def test_smoothing_lowers_jitter(landmarks):
    rng = np.random.default_rng(0)
    jittered = [landmarks + rng.normal(0, 1.5, landmarks.shape) for _ in range(50)]
    raw, smooth = motion(jittered), motion(smoothed(jittered))
    assert smooth < 0.5 * raw, (raw, smooth)


@pytest.mark.parametrize("speed", [60.0, 400.0])  # pixels per second: a slow pan and a fast one
def test_no_lag_on_a_steady_pan(landmarks, speed):
    truth = [landmarks + [speed * i / FPS, 0.0] for i in range(50)]
    out = smoothed(truth)
    lag = max(np.abs(o - t).max() for o, t in zip(out[5:], truth[5:]))
    assert lag < 1.0, f"lags {lag:.2f} px behind a {speed} px/s pan"
    # A plain low-pass at the still-face cutoff (1 Hz) would trail by speed / (2π) px: 10 px at 60 px/s.


def test_a_new_face_starts_its_own_track(landmarks):
    tracks = FaceTracks(FPS)
    tracks.update(0, [landmarks])
    far = landmarks + [500.0, 0.0]
    (out,) = tracks.update(1, [far])
    assert np.allclose(out, far), "a face far from the last one must not be pulled towards it"
    assert len(tracks.tracks) == 1
