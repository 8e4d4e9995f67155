"""The detector plugin API and the one place detectors are created.

A detector plugin is a class registered with ``@register_detector("name")`` whose constructor keyword
arguments are its settings (checked against the signature, like a loss's) and which has two methods:

``detect(rgb) -> list[Detection]``
    ``rgb``: uint8 H×W×3 RGB. Returns the faces found, each a box ``(x0, y0, x1, y1)`` in source
    pixels and a score (higher is surer; the scale is the detector's own).
``landmarks(rgb, box) -> ndarray``
    The 68 iBUG 300-W landmarks (float (68, 2), source pixels) of the face in ``box``.

Example (a user plugin file dropped in a ``--plugins-dir`` folder)::

    from faceswap_lite.extract.detect import Detection
    from faceswap_lite.registry import register_detector

    @register_detector("my-detector")
    class MyDetector:
        def __init__(self, threshold: float = 0.5) -> None: ...
        def detect(self, rgb): return [Detection((10, 10, 110, 110), 0.9)]
        def landmarks(self, rgb, box): ...
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..errors import PluginError
from ..registry import DETECTORS, check_settings, load_plugin_file, load_plugins

DEFAULT_DETECTOR = "dlib-hog"
BUILTIN_DETECTORS = "faceswap_lite.plugins.detectors"
USER_PLUGIN_PREFIX = "faceswap_lite_user_plugins."  # module names registry.load_plugin_file gives


class Detection(NamedTuple):
    """One detected face: ``box`` = (x0, y0, x1, y1) in source pixels, and the detector's score."""

    box: tuple[float, float, float, float]
    score: float


@runtime_checkable
class Detector(Protocol):
    """What the extract pipeline needs from a detector plugin."""

    def detect(self, rgb: np.ndarray) -> Sequence[Detection]: ...

    def landmarks(self, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray: ...


@dataclass(frozen=True)
class DetectorSpec:
    """A checked detector request that a worker process can rebuild: the registered name, its
    settings, and where its class lives (a module to import, or a user plugin file to load), so a
    worker imports only that, not every plugin."""

    name: str
    settings: tuple[tuple[str, Any], ...]
    module: str
    file: str | None = None


_CACHE: dict[str, Any] = {}


def resolve_detector(name: str, settings: Mapping[str, Any] | None = None,
                     plugins_dirs: Sequence[str] = ()) -> DetectorSpec:
    """Find detector ``name`` and check ``settings`` against its constructor (raises PluginError).

    The built-in detectors are imported first, alone; the other plugins (entry points, plugin
    folders, and the losses and models, which import torch) load only when the name is not a
    built-in or plugin folders are given.
    """
    if plugins_dirs or not _load_builtin_detectors(name):
        load_plugins(plugins_dirs)
    cls = DETECTORS.get(name)
    checked = check_settings("detector", name, cls, settings or {})
    module = sys.modules[cls.__module__]
    file = module.__file__ if cls.__module__.startswith(USER_PLUGIN_PREFIX) else None
    return DetectorSpec(name, tuple(sorted(checked.items())), cls.__module__, file)


def _load_builtin_detectors(name: str) -> bool:
    """Import the built-in detector modules; True if that registered ``name``."""
    package = importlib.import_module(BUILTIN_DETECTORS)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        try:
            importlib.import_module(f"{BUILTIN_DETECTORS}.{info.name}")
        except Exception:  # load_plugins records and reports it
            return False
    return name in DETECTORS


def build_detector(spec: DetectorSpec) -> Detector:
    """The detector of ``spec``; one instance per process and spec (models are big and slow to load)."""
    key = repr(spec)  # settings may hold unhashable values (lists)
    if key not in _CACHE:
        if spec.name not in DETECTORS:
            if spec.file is not None:
                failure = load_plugin_file(spec.file)
                if failure is not None:
                    raise PluginError(f"detector plugin {failure}")
            else:
                importlib.import_module(spec.module)
        _CACHE[key] = DETECTORS.get(spec.name)(**dict(spec.settings))
    return _CACHE[key]


def create_detector(name: str, settings: Mapping[str, Any] | None = None,
                    plugins_dirs: Sequence[str] = ()) -> Detector:
    """Build detector ``name`` with ``settings`` (checked), cached per process."""
    return build_detector(resolve_detector(name, settings, plugins_dirs))
