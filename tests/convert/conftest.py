"""Shared fixtures for the convert tests: a short clip with a tone made from a real photo, its face
set (extracted with the real pipeline) and a tiny model trained on it for a few steps (cpu-quick).

Everything is real and offline: tests/photos's public-domain photos, dlib's detector, PyAV's encoders.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from faceswap_lite.extract import ExtractOptions, plan_extract, run_extract

from .. import helpers
from ..helpers import PHOTOS

FRAMES, FPS, W, H = 8, 12, 320, 240
TONE_HZ, RATE = 440.0, 16000
TINY = [*helpers.TINY_MODEL, "train.steps=2", "data.batch_size=4", "data.workers=0", "train.save_every=2",
        "train.preview_every=100", "train.eval_every=100", "data.val_fraction=0.0"]


def make_clip(path: Path, photo: str = "obama.jpg", frames: int = FRAMES, tone: bool = True) -> Path:
    """A ``frames``-long W×H H.264 clip panning over a tests/photos photo, with a 440 Hz AAC tone."""
    rgb = cv2.cvtColor(cv2.imread(str(PHOTOS / photo)), cv2.COLOR_BGR2RGB)  # obama.jpg: 400×500
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = None
        if tone:
            audio = out.add_stream("aac", rate=RATE)
            audio.layout = "mono"
        for i in range(frames):
            t = i / max(frames - 1, 1)
            x, y = round(min(80, rgb.shape[1] - W) * t), round(min(60, rgb.shape[0] - H) * np.sin(np.pi * t))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[y:y + H, x:x + W]), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for p in video.encode(frame):
                out.mux(p)
        if audio is not None:
            t = np.arange(int(RATE * frames / FPS)) / RATE
            samples = (0.4 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
            for k in range(0, len(samples), 1024):
                af = av.AudioFrame.from_ndarray(samples[None, k:k + 1024], format="flt", layout="mono")
                af.sample_rate, af.pts = RATE, k
                for p in audio.encode(af):
                    out.mux(p)
            for p in audio.encode():
                out.mux(p)
        for p in video.encode():
            out.mux(p)
    return path


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def run_cli(args: list, expect: int = 0):
    """``faceswap-lite ARGS`` in process (paths given as Path objects too)."""
    return helpers.run_cli([str(a) for a in args], expect)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="session")
def faces(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faces") / "faces"
    summary = run_extract(plan_extract([str(clip)], out, ExtractOptions(size=64, workers=1)))
    assert summary.faces_written == FRAMES, summary.lines()
    return out


@pytest.fixture(scope="session")
def run(faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-side (A) cpu-quick model, tiny, trained 2 steps on the clip's faces."""
    folder = tmp_path_factory.mktemp("run") / "run"
    run_cli(["train", "-A", faces, "-o", folder, "-c", "cpu-quick", *helpers.sets(TINY)])
    return folder
