"""The two small synthetic face sets the training tests share (built once per test module)."""

from __future__ import annotations

import pytest

from tools.synthetic_faces import make_face_set


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    make_face_set(root / "A", 10, size=96, seed=0)
    make_face_set(root / "B", 10, size=96, seed=1)
    return root
