"""The demo job: extract the shipped sample, train a small reconstruction model on CPU, show results.

``faceswap-lite demo -o DIR`` builds a short video clip from the public-domain sample photo that ships
inside the package (a slow zoom and pan with a slight head tilt), extracts its faces into
``DIR/faces`` with the real pipeline, trains the ``cpu-quick`` recipe into ``DIR/run`` and converts
the clip through the trained model into ``DIR/converted/``.

The config (the recipe with ``--set`` overrides) and DIR's writability are checked before the clip
is made, and the demo holds DIR's lock while it runs (:func:`demo_lock`; its run folder ``DIR/run``
is locked by the training itself). A re-run finds the faces and the trained run and only converts.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .errors import FaceswapLiteError
from .fsutil import FolderLock, check_output_folder

if TYPE_CHECKING:
    from .config import Config

SAMPLE = "astronaut.jpg"
CLIP_NAME = "sample_clip.avi"


def sample_photo() -> Path:
    return Path(str(files("faceswap_lite.assets.samples") / SAMPLE))


def make_sample_clip(photo: Path, out: Path, frames: int = 48, size: int = 320, fps: float = 12.0) -> Path:
    """Write a clip of ``frames`` frames: a moving, zooming, slightly rotating crop of ``photo`` (MJPG .avi)."""
    bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FaceswapLiteError(f"cannot read the sample photo {photo}")
    h, w = bgr.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    if not writer.isOpened():
        raise FaceswapLiteError(f"OpenCV cannot write an MJPG video to {out}")
    try:
        for i in range(frames):
            t = i / max(frames - 1, 1)
            angle = 6.0 * np.sin(2 * np.pi * t)  # head tilt, degrees
            zoom = 1.0 + 0.25 * np.sin(np.pi * t)  # in and out
            cx = w * (0.45 + 0.06 * np.sin(2 * np.pi * t))
            cy = h * (0.40 + 0.04 * np.cos(2 * np.pi * t))
            m = cv2.getRotationMatrix2D((cx, cy), angle, zoom * size / (0.8 * w))
            m[:, 2] += (size / 2 - cx, size / 2 - cy)
            frame = cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            writer.write(frame)
    finally:
        writer.release()
    return out


@dataclass
class DemoResult:
    out: Path
    faces: Path
    run: Path
    faces_written: int
    extract_lines: list[str]


def demo_config(overrides: list[str] | tuple[str, ...], steps: int | None = None) -> Config:
    """The demo's config: the cpu-quick recipe with ``overrides`` (and ``--steps``), checked before
    anything is extracted, so a ``--set`` typo costs no clip."""
    from .config import load_config, recipe_path

    return load_config(recipe_path("cpu-quick"), list(overrides) + ([f"train.steps={steps}"] if steps else []))


def demo_lock(out: str | Path) -> FolderLock:
    """The lock the demo holds on ``out`` (which must be writable: checked first, nothing written)."""
    check_output_folder(Path(out), FaceswapLiteError, "-o")
    return FolderLock(out, "demo folder")


def prepare_demo(out: str | Path, frames: int = 48, workers: int | None = None) -> DemoResult:
    """Make the clip and extract its faces (skipped if already done). Returns where things are."""
    from .extract import ExtractOptions, plan_extract, run_extract

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clip = out / CLIP_NAME
    if not clip.exists():
        make_sample_clip(sample_photo(), clip, frames=frames)
    faces = out / "faces"
    options = ExtractOptions(size=128, workers=workers, max_faces=1)
    summary = run_extract(plan_extract([clip], faces, options))
    if summary.no_faces:
        raise FaceswapLiteError(f"the demo found no face in {clip}: the detector is not working")
    return DemoResult(out, faces, out / "run", summary.faces_written + summary.faces_done_before, summary.lines())


def convert_demo(demo: DemoResult, workers: int | None = None) -> tuple[Path, list[str]]:
    """Convert the demo's clip through its trained model into ``OUT/converted/`` (a reconstruction:
    the demo trains one identity). The faces come from the demo's face set (``--faces``), so the
    clip is not searched for faces a second time. Returns (the video written, the summary lines)."""
    from .convert.pipeline import ConvertOptions, plan_convert, run_convert

    clip = demo.out / CLIP_NAME
    plan = plan_convert([clip], demo.out / "converted", demo.run, ConvertOptions(faces=str(demo.faces),
                                                                                  workers=workers))
    summary = run_convert(plan)
    if not summary.written:
        raise FaceswapLiteError(f"the demo could not convert {clip}: {'; '.join(summary.warnings)}")
    return summary.written[0], summary.lines()
