"""Shared fixtures: a clean plugin registry around every test, and the faces of the real photos
(tests/photos, extracted once per session) and a short video made from one, for any test that needs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceswap_lite import registry
from faceswap_lite.extract import ExtractSummary

from .helpers import PHOTOS, extract, make_video


@pytest.fixture(autouse=True)
def clean_registry():
    """Load the built-ins, then run the test in a registry scope: every registry and the loader's
    state are as they were after it.

    Autouse: tests that load user plugins (through the CLI, in process) must not leave them, or
    their load failures, to the tests that follow.
    """
    registry.load_plugins()
    with registry.scope():
        yield registry


@pytest.fixture(scope="session")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame mp4 (mp4v) made from a real photo."""
    return make_video(tmp_path_factory.mktemp("video") / "pan.mp4")


@pytest.fixture(scope="session")
def photo_faces(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExtractSummary, Path]:
    """tests/photos extracted once (one worker, default settings)."""
    out = tmp_path_factory.mktemp("photo_faces") / "faces"
    return extract([PHOTOS], out), out
