"""The detector plugin contract (the detector registry's hooks) and the spec workers build from.

A detector plugin is a class registered with ``@register_detector("name")`` whose constructor keyword
arguments are its settings (checked against the signature, like a loss's) and which has two methods:

``detect(rgb) -> list[Detection]``
    ``rgb``: uint8 H×W×3 RGB. Returns the faces found, each a box ``(x0, y0, x1, y1)`` in source
    pixels and a score (higher is surer; the scale is the detector's own).
``landmarks(rgb, box) -> ndarray``
    The 68 iBUG 300-W landmarks (float (68, 2), source pixels) of the face in ``box``.

Build one with ``DETECTORS.build(name, settings)``. Example (a user plugin file dropped in a
``--plugins-dir`` folder)::

    from faceswap_lite.extract.detect import Detection
    from faceswap_lite.registry import register_detector

    @register_detector("my-detector")
    class MyDetector:
        def __init__(self, threshold: float = 0.5) -> None: ...
        def detect(self, rgb): return [Detection((10, 10, 110, 110), 0.9)]
        def landmarks(self, rgb, box): ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..errors import PluginError
from ..registry import DETECTORS, check_settings, load_plugins

DEFAULT_DETECTOR = "dlib-hog"
INJECTED: tuple[str, ...] = ()  # a detector gets its settings only


class Detection(NamedTuple):
    """One detected face: ``box`` = (x0, y0, x1, y1) in source pixels, and the detector's score."""

    box: tuple[float, float, float, float]
    score: float


@runtime_checkable
class Detector(Protocol):
    """What the extract pipeline needs from a detector plugin."""

    def detect(self, rgb: np.ndarray) -> Sequence[Detection]: ...

    def landmarks(self, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray: ...


def validate(name: str, detector: Any, injected: Mapping[str, Any]) -> None:
    """A built detector has the :class:`Detector` methods."""
    if not isinstance(detector, Detector):
        raise PluginError(f"detector {name!r} ({type(detector).__qualname__}) needs the methods "
                          "detect(rgb) and landmarks(rgb, box)")


def facts(cls: type) -> dict[str, str]:
    """Nothing beyond the settings."""
    return {}


@dataclass(frozen=True)
class DetectorSpec:
    """A checked detector request a worker process rebuilds: the registered name, its settings and
    the plugin folders to load first (``load_plugins`` then ``DETECTORS.build``, as the main process)."""

    name: str
    settings: tuple[tuple[str, Any], ...] = ()
    plugin_dirs: tuple[str, ...] = ()

    @classmethod
    def check(cls, name: str, settings: Mapping[str, Any] | None = None,
              plugin_dirs: Sequence[str | Path] = ()) -> DetectorSpec:
        """Find ``name`` and check ``settings`` against its constructor (raises PluginError)."""
        dirs = tuple(str(Path(d).expanduser().resolve()) for d in plugin_dirs)
        if dirs:
            load_plugins(dirs, kind=DETECTORS)
        checked = check_settings("detector", name, DETECTORS.get(name), settings or {})
        return cls(name, tuple(sorted(checked.items())), dirs)


_CACHE: dict[str, Any] = {}


def detector_for(spec: DetectorSpec) -> Detector:
    """The detector of ``spec``; one instance per process and spec (models are big and slow to load)."""
    key = repr(spec)  # settings may hold unhashable values (lists)
    if key not in _CACHE:
        if spec.plugin_dirs:
            load_plugins(spec.plugin_dirs, kind=DETECTORS)
        _CACHE[key] = DETECTORS.build(spec.name, dict(spec.settings))
    return _CACHE[key]


def face_landmarks(detector: Detector, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The 68 landmarks (float64 68×2, source pixels) of the face in ``box``."""
    return np.asarray(detector.landmarks(rgb, box), dtype=np.float64)


def find_faces(detector: Detector, rgb: np.ndarray, min_score: float | None = None) -> list[np.ndarray]:
    """The landmarks of each face ``detector`` finds in ``rgb`` (scoring at least ``min_score``)."""
    return [face_landmarks(detector, rgb, d.box) for d in detector.detect(rgb)
            if min_score is None or d.score >= min_score]
