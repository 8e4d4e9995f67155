"""Shared fixtures for the extract tests: the photos in tests/data and short videos made from one.

Everything is real data and offline: the photos are public-domain portraits (tests/data/README.md),
the videos are built here with cv2.VideoWriter as a moving crop over a real photo.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap_lite.extract import ExtractOptions, ExtractSummary, plan_extract, run_extract

DATA = Path(__file__).resolve().parents[1] / "data"

# Faces each photo holds (checked by eye; see tests/data/README.md).
EXPECTED_FACES = {
    "astronaut.jpg": 1,
    "biden.jpg": 1,
    "obama.jpg": 1,
    "obama2.jpg": 1,
    "obama3.jpg": 1,
    "rocket.jpg": 0,
}


def make_video(path: Path, frames: int = 24, fourcc: str = "mp4v", fps: float = 12.0) -> Path:
    """A ``frames``-long 320×240 video panning over tests/data/obama.jpg (the face stays in view)."""
    img = cv2.imread(str(DATA / "obama.jpg"))  # BGR only inside OpenCV I/O
    assert img is not None and img.shape[:2] == (500, 400)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (320, 240))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path.suffix}"
    for i in range(frames):
        t = i / max(frames - 1, 1)
        x, y = round(80 * t), round(60 * np.sin(np.pi * t))
        writer.write(np.ascontiguousarray(img[y:y + 240, x:x + 320]))
    writer.release()
    return path


def extract(inputs: list[Path | str], output: Path, **kw) -> ExtractSummary:
    """Plan and run an extraction with ``ExtractOptions(**kw)`` (one worker unless given)."""
    kw.setdefault("workers", 1)
    return run_extract(plan_extract([str(p) for p in inputs], output, ExtractOptions(**kw)))


@pytest.fixture(scope="session")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame mp4 (mp4v) made from a real photo."""
    return make_video(tmp_path_factory.mktemp("video") / "pan.mp4")


@pytest.fixture(scope="session")
def photo_faces(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExtractSummary, Path]:
    """tests/data extracted once (one worker, default settings)."""
    out = tmp_path_factory.mktemp("photo_faces") / "faces"
    return extract([DATA], out), out
