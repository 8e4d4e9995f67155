"""Where plugins come from: importing the built-ins, the entry points and plugin folders, and
recording each source that fails.

Loading only imports modules; their ``@register_*`` decorators fill the registries. The loader's
state (what was imported, from where, what failed) is one module-level object, so that every
registry's messages can name the folders searched and the failures.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
import pkgutil
import sys
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PluginError, first_line

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "faceswap_lite.plugins"
BUILT_IN, ENTRY_POINT, FOLDER = "built-in", "entry point", "folder"  # where a plugin came from
# A clash names both files in full: longer than first_line's default cut.
FAILURE_LIMIT = 1000


@dataclass(frozen=True)
class PluginFailure:
    """A plugin source that could not be imported."""

    source: str  # file path, entry point "name = value", or module name
    error: str  # "ExceptionType: message" (one line)

    def __str__(self) -> str:
        return f"{self.source} ({self.error})"


@dataclass
class LoadState:
    """What the loader has done so far in this process."""

    builtins_loaded: set[str] = field(default_factory=set)  # built-in packages imported
    entry_points_loaded: bool = False
    dirs: list[Path] = field(default_factory=list)
    loaded_files: set[Path] = field(default_factory=set)
    failures: list[PluginFailure] = field(default_factory=list)
    loading: str | None = None  # where the plugins being imported now come from


STATE = LoadState()


@contextlib.contextmanager
def kept_state() -> Iterator[None]:
    """The loader's state is put back as it was on leaving (see ``registry.scope``)."""
    saved = copy.deepcopy(STATE)
    try:
        yield
    finally:
        vars(STATE).update(vars(saved))  # in place: modules hold STATE itself


def plugin_failures() -> list[PluginFailure]:
    """Every plugin source that failed to import so far."""
    return list(STATE.failures)


def _one_line(exc: BaseException) -> str:
    """``"ExceptionType: first line"``; a SyntaxError says its line instead of quoting the code."""
    name = type(exc).__name__
    if isinstance(exc, SyntaxError):
        return f"{name}: {exc.msg}" + (f" (line {exc.lineno})" if exc.lineno else "")
    return f"{name}: {first_line(exc, FAILURE_LIMIT)}" if str(exc).strip() else name


def _record(source: str, exc: BaseException) -> PluginFailure:
    failure = PluginFailure(source, _one_line(exc))
    if failure not in STATE.failures:
        STATE.failures.append(failure)
        log.warning("plugin %s failed to load: %s", source, failure.error)
        log.debug("%s", "".join(traceback.format_exception(exc)))
    return failure


@contextlib.contextmanager
def _loading(source: str) -> Iterator[None]:
    """Registrations made inside come from ``source`` (shown by ``describe``)."""
    before, STATE.loading = STATE.loading, source
    try:
        yield
    finally:
        STATE.loading = before


def load_builtins(package_name: str) -> None:
    """Import every module of one built-in plugin package (a broken one must not hide the others)."""
    if package_name in STATE.builtins_loaded:
        return
    STATE.builtins_loaded.add(package_name)
    package = importlib.import_module(package_name)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        name = f"{package_name}.{info.name}"
        try:
            with _loading(BUILT_IN):
                importlib.import_module(name)
        except Exception as exc:
            _record(name, exc)


def load_entry_points() -> None:
    """Import the module each ``faceswap_lite.plugins`` entry point names (once per process)."""
    if STATE.entry_points_loaded:
        return
    STATE.entry_points_loaded = True
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            with _loading(f"{ENTRY_POINT} {ep.name}"):
                ep.load()
        except Exception as exc:
            dist = getattr(ep, "dist", None)
            where = f" from {dist.name}" if dist is not None else ""
            _record(f"entry point {ep.name} = {ep.value}{where}", exc)


def rescan_entry_points() -> None:
    """Read the entry points again on the next load: a distribution was installed since."""
    STATE.entry_points_loaded = False


def load_plugin_file(path: str | Path) -> PluginFailure | None:
    """Import one plugin file; return the failure (also recorded) instead of raising."""
    path = Path(path).resolve()
    if path in STATE.loaded_files:
        return None
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"faceswap_lite_user_plugins.{path.stem}_{digest}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError("not a Python source file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            with _loading(f"{FOLDER} {path.parent}"):
                spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
    except Exception as exc:
        return _record(str(path), exc)
    STATE.loaded_files.add(path)
    return None


def load_folders(dirs: Iterable[str | Path]) -> None:
    """Import every ``*.py`` file (but ``_*.py``) of each folder. A folder that does not exist is an
    error: a typo there would otherwise go unnoticed."""
    for d in dirs:
        folder = Path(d).expanduser().resolve()
        if not folder.is_dir():
            raise PluginError(f"plugin folder {str(d)!r} does not exist or is not a folder")
        if folder not in STATE.dirs:
            STATE.dirs.append(folder)
        for file in sorted(folder.glob("*.py")):
            if not file.name.startswith("_"):
                load_plugin_file(file)
