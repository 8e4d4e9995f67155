"""The small synthetic face set the process-level reliability tests train on."""

from __future__ import annotations

import pytest

from tools.synthetic_faces import make_face_set


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces") / "A"
    make_face_set(folder, 6, size=64, seed=0)
    return folder
