"""Shared fixtures for the evaluate/compare tests: tiny synthetic face sets, a tiny trained two-side
run, and real faces extracted from the photos in tests/photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceswap_lite.config import load_config
from faceswap_lite.extract import ExtractOptions, plan_extract, run_extract
from faceswap_lite.train.trainer import train
from tools.synthetic_faces import make_face_set

from ..helpers import PHOTOS, TINY_MODEL

PLUGINS = Path(__file__).resolve().parent / "plugins"

# A model small enough to train a few steps in well under a second on a busy CPU.
TINY = [*TINY_MODEL, "data.batch_size=4", "data.workers=0", "train.device=cpu",
        "train.log_every=1", "train.eval_every=2", "train.preview_every=2", "train.save_every=2",
        "train.preview_faces=2", "train.lr=1e-3", "data.val_fraction=0.2"]


@pytest.fixture(scope="session")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic face sets A and B, 12 faces each (96 px)."""
    root = tmp_path_factory.mktemp("eval_faces")
    make_face_set(root / "A", 12, size=96, seed=0)
    make_face_set(root / "B", 12, size=96, seed=1, prefix="b")
    return root


@pytest.fixture(scope="session")
def tiny_run(faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-side run trained for 2 steps."""
    run = tmp_path_factory.mktemp("eval_run") / "run"
    cfg = load_config(None, TINY + ["train.steps=2"])
    train(cfg, {"a": faces / "A", "b": faces / "B"}, run, progress=False)
    return run


@pytest.fixture(scope="session")
def photo_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The faces of the real photos of tests/photos (Obama three times, Biden once), 256 px crops."""
    out = tmp_path_factory.mktemp("eval_photos") / "faces"
    photos = [PHOTOS / n for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")]
    run_extract(plan_extract([str(p) for p in photos], out, ExtractOptions(workers=1)))
    return out
