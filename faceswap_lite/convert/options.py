"""Convert's options, declared once: default, help text and bounds of each (the CLI reads them here).

The ``--color`` and ``--blend`` choices are the keys of :mod:`.blend`'s mode tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import FaceswapLiteError
from ..extract.align import DEFAULT_MAX_FIT_ERROR
from ..extract.detect import DEFAULT_DETECTOR
from ..frames import usable_cpus
from ..identity import DEFAULT_THRESHOLD as DEFAULT_IDENTITY_THRESHOLD
from ..settings import check_fields, setting
from .blend import BLEND_MODES, COLOR_MODES


class ConvertError(FaceswapLiteError):
    """A convert request that cannot run (options, output folder, inputs)."""


@dataclass(frozen=True)
class ConvertOptions:
    """Everything that controls a conversion (the CLI's options, one to one)."""

    to: str | None = setting(None, "Decoder side to swap to [default: B for a two-side model, else the only side].")
    faces: str | None = setting(None, "Swap only the faces of this face set (extracted from these inputs); others "
                                      "stay untouched.")
    identity: tuple[str, ...] = setting((), "Swap only this person: a photo of them alone, or a face set; "
                                            "repeatable.")
    identity_threshold: float = setting(DEFAULT_IDENTITY_THRESHOLD, "Largest descriptor distance from an "
                                                                    "--identity reference to swap a face.", gt=0)
    color: str = setting("avg", "Colour matching to the original face: Lab mean shift, histogram, or none.",
                         choices=tuple(COLOR_MODES))
    blend: str = setting("alpha", "Alpha blend with the feathered mask, or Poisson (cv2.seamlessClone) first.",
                         choices=tuple(BLEND_MODES))
    erode: float = setting(0.03, "Shrink the mask by this fraction of the face crop.", gt=-0.5, lt=0.5)
    blur: float = setting(0.03, "Feather the mask edge (sigma = blur x crop / 2).", min=0, max=0.5)
    smooth: bool = setting(True, "Smooth landmarks over video frames (One-Euro filter); photos are never smoothed.")
    frames: bool = setting(False, "Write each video as a folder of lossless PNG frames.")
    watermark: str | None = setting(None, "Also draw TEXT visibly on every output picture.")
    batch_size: int = setting(16, "Faces per model batch.", min=1)
    device: str | None = setting(None, "cpu, cuda, cuda:N or auto [default: the device the run trained on].")
    raw_weights: bool = setting(False, "Use the raw weights of a run trained with train.ema, not their average.")
    detector: str = setting(DEFAULT_DETECTOR, "Face detector plugin (as extract).")
    detector_settings: Mapping[str, Any] = setting({}, "A detector setting, e.g. -s upsample=2; repeatable.")
    max_fit_error: float = setting(DEFAULT_MAX_FIT_ERROR, "Leave faces whose landmarks fit the mean face worse "
                                                          "than this (as extract).")
    workers: int | None = setting(None, "Detector processes [default: CPU count].", min=1)
    plugins_dirs: tuple[str, ...] = setting((), "Folders of user plugin files (*.py) to load.")

    def check(self) -> None:
        """Raise a ConvertError naming each option that is out of its bounds."""
        check_fields(self, name_of=lambda n: "--" + n.replace("_", "-"), error=ConvertError)
        if self.faces is not None and self.identity:
            raise ConvertError("--faces and --identity both choose the faces to swap; give one of them")

    def worker_count(self) -> int:
        """``workers``, or the CPUs this process may run on."""
        return self.workers if self.workers is not None else usable_cpus()
