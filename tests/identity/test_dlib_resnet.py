"""dlib's face recognition ResNet in PyTorch: the same descriptors as dlib's own network, read from
dlib's own model file, and a wrong or damaged file refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from faceswap_lite import identity
from faceswap_lite.dlib_models import import_dlib, model_path
from faceswap_lite.dlib_resnet import ModelFileError, _add, read_model
from faceswap_lite.extract.detect import DetectorSpec, detector_for, find_faces
from faceswap_lite.extract.sources import read_image

from ..helpers import EXPECTED_FACES, PHOTOS


@pytest.fixture(scope="module")
def faces() -> list[tuple[np.ndarray, np.ndarray]]:
    """(photo, 68 landmarks) of every face in tests/photos."""
    detector = detector_for(DetectorSpec.check("dlib-hog"))
    found = [(rgb, lm) for name in sorted(EXPECTED_FACES)
             for rgb in [read_image(PHOTOS / name)] for lm in find_faces(detector, rgb)]
    assert len(found) == sum(EXPECTED_FACES.values())
    return found


def test_same_descriptors_as_dlibs_own_network(faces):
    dlib_net = import_dlib().face_recognition_model_v1(str(model_path(identity.MODEL_FILE)))
    for rgb, landmarks in faces:
        chip = identity.chips(rgb, [landmarks])[0]
        expected = np.asarray(dlib_net.compute_face_descriptor(chip), dtype=np.float32)
        ours = identity.descriptor(rgb, landmarks)
        assert np.abs(ours - expected).max() < 1e-5
        assert 1.2 < np.linalg.norm(expected) < 1.6  # a real descriptor, not zeros


def test_a_batch_gives_each_face_its_own_descriptor():
    rgb = read_image(PHOTOS / "obama.jpg")
    detector = detector_for(DetectorSpec.check("dlib-hog"))
    (landmarks,) = find_faces(detector, rgb)
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    (mirrored_landmarks,) = find_faces(detector, mirrored)
    batch = identity.descriptors(rgb, [landmarks, landmarks + 1.0])
    assert batch.shape == (2, 128) and batch.dtype == np.float32
    assert np.abs(batch[0] - identity.descriptor(rgb, landmarks)).max() < 1e-5
    assert 0 < identity.distance(batch[0], batch[1]) < 0.1  # a shifted chip: the same person
    assert identity.distance(batch[0], identity.descriptor(mirrored, mirrored_landmarks)) < 0.3
    assert identity.descriptors(rgb, []).shape == (0, 128)


def test_residual_sum_of_different_sizes_pads_with_zeros():
    a = torch.ones(1, 2, 3, 3)
    b = torch.full((1, 1, 4, 4), 2.0)
    out = _add(a, b)
    assert out.shape == (1, 2, 4, 4)
    assert torch.all(out[0, 0, :3, :3] == 3) and torch.all(out[0, 0, 3] == 2) and torch.all(out[0, 0, :, 3] == 2)
    assert torch.all(out[0, 1, :3, :3] == 1) and out[0, 1, 3, 3] == 0


def test_another_network_or_a_damaged_file_is_refused(tmp_path: Path):
    detector_file = model_path("mmod_human_face_detector.dat")  # a dlib network, not this one
    with pytest.raises(ModelFileError, match="not dlib's face recognition ResNet") as info:
        read_model(detector_file)
    assert str(detector_file) in str(info.value)
    cut = tmp_path / "cut.dat"
    data = model_path(identity.MODEL_FILE).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.dat"):
        read_model(cut)
    whole = tmp_path / "whole.dat"
    shutil.copy(model_path(identity.MODEL_FILE), whole)
    weights = read_model(whole)
    assert len(weights["convs"]) == 29 and weights["fc"].shape == (256, 128)
