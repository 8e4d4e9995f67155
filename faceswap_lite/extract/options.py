"""Extract's options, declared once: default, help text and bounds of each (the CLI reads them here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import FaceswapLiteError
from ..frames import usable_cpus
from ..identity import DEFAULT_THRESHOLD as DEFAULT_IDENTITY_THRESHOLD
from ..settings import check_fields, setting
from .align import DEFAULT_CENTERING, DEFAULT_MAX_FIT_ERROR, DEFAULT_PADDING, DEFAULT_SIZE
from .detect import DEFAULT_DETECTOR


@dataclass(frozen=True)
class ExtractOptions:
    """Everything that controls an extraction (the CLI's options, one to one)."""

    detector: str = setting(DEFAULT_DETECTOR, "Face detector plugin: dlib-hog (fast) or dlib-cnn (slow, more "
                                              "robust), or a user plugin.")
    detector_settings: Mapping[str, Any] = setting({}, "A detector setting, e.g. -s upsample=2 -s threshold=0.2; "
                                                       "repeatable.")
    size: int = setting(DEFAULT_SIZE, "Side of the square face crop in pixels.", min=16, max=4096)
    padding: float = setting(DEFAULT_PADDING, "Margin around the eyebrows-to-mouth box, as a fraction of it (more "
                                              "shows more head).", gt=-0.45, max=3.0)
    centering: float = setting(DEFAULT_CENTERING, "Move the crop up by this fraction of the eyebrows-to-mouth box "
                                                  "(shows the forehead).", min=-1.0, max=1.0)
    fill: tuple[int, ...] = setting((0, 0, 0), "Colour of crop pixels outside the source image (recorded as "
                                               "invalid for training).")
    every: int = setting(1, "Use every Nth video frame.", min=1)
    min_size: float = setting(0.0, "Skip faces whose detection box is smaller than this many pixels (source "
                                   "image).", min=0)
    max_faces: int = setting(0, "Keep at most this many faces per frame, the largest (0: no limit).", min=0)
    min_score: float | None = setting(None, "Skip faces the detector scores below this.")
    max_fit_error: float = setting(DEFAULT_MAX_FIT_ERROR, "Skip faces whose landmarks fit the mean face worse "
                                                          "than this (RMS, in face-box units).", gt=0)
    workers: int | None = setting(None, "Worker processes [default: CPU count].", min=1)
    overwrite: bool = setting(False, "Redo sources already extracted into the output folder.")
    plugins_dirs: tuple[str, ...] = setting((), "Folders of user plugin files (*.py) to load.")
    compress_level: int = setting(1, "zlib level of the face PNGs (with the RLE strategy, see "
                                     "faceswap_lite.extract.worker.PNG_STRATEGY).", min=0, max=9)
    identity: tuple[str, ...] = setting((), "Keep only this person's faces: a photo of them alone, or a face "
                                            "set; repeatable.")
    identity_threshold: float = setting(DEFAULT_IDENTITY_THRESHOLD, "Largest descriptor distance from an "
                                                                    "--identity reference to keep a face.", gt=0)

    def check(self) -> None:
        """Raise a FaceswapLiteError naming each option that is out of its bounds."""
        check_fields(self, name_of=lambda n: "--" + n.replace("_", "-"), error=FaceswapLiteError)
        if len(self.fill) != 3 or any(not 0 <= c <= 255 for c in self.fill):
            raise FaceswapLiteError(f"--fill must be three values 0..255, got {self.fill}")

    def geometry(self) -> dict[str, float]:
        """The settings that fix where a face lands in its crop (a face set must not mix them)."""
        return {"size": self.size, "padding": self.padding, "centering": self.centering}

    def worker_count(self) -> int:
        """``workers``, or the CPUs this process may run on."""
        return self.workers if self.workers is not None else usable_cpus()
