"""Registries for plugins (losses, detectors, models) and the one way plugins are loaded.

A registry is a dict and a decorator. Plugins come from three places, in this order, through the
same decorators:

1. the built-ins shipped in ``faceswap_lite.plugins`` (they are the first users of this API);
2. installed distributions declaring the entry-point group ``faceswap_lite.plugins`` (the value
   names a module; importing it runs its ``@register_*`` decorators);
3. ``.py`` files in plugin folders (``--plugins-dir``, repeatable, or the ``plugins.dirs`` config key).

A plugin that fails to import does not stop the others: the failure is recorded with the file and
the exception, reported as a warning, and named again if the user asks for a name it might have held.

Every kind is built and described the same way, ``REGISTRY.build(name, settings, **injected)`` and
``REGISTRY.describe(name)``; what differs per kind (the contract a built plugin must meet, the facts
a listing shows) lives in the kind's own module, named by ``hooks`` and imported only when used, so
building a detector never imports torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import pkgutil
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import PluginError, did_you_mean

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "faceswap_lite.plugins"
BUILT_IN, ENTRY_POINT, FOLDER = "built-in", "entry point", "folder"  # where a plugin came from

T = TypeVar("T")


@dataclass(frozen=True)
class PluginFailure:
    """A plugin source that could not be imported."""

    source: str  # file path, entry point "name = value", or module name
    error: str  # "ExceptionType: message" (one line)

    def __str__(self) -> str:
        return f"{self.source} ({self.error})"


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"SyntaxError: {exc.msg}{where}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class PluginInfo:
    """What ``Registry.describe`` tells about one plugin (for listings and docs)."""

    kind: str
    name: str
    doc: str  # the first line of the class docstring
    settings: dict[str, str]  # setting -> default repr, or "(required)"
    facts: dict[str, str]  # kind-specific, e.g. a loss's output kind
    source: str  # built-in, entry point NAME, folder PATH (or the module it was registered from)


class Registry:
    """A named dict of classes filled by a decorator, which builds and describes what it holds.

    ``package`` is the kind's built-in plugin package (imported on first use); ``hooks`` the module
    with the kind's ``validate(name, obj, injected)`` (the contract a built plugin must meet, raising
    PluginError), ``facts(cls) -> dict`` (for ``describe``) and ``INJECTED`` (constructor arguments
    faceswap-lite passes itself, never settings).

    >>> LOSSES = Registry("loss")
    >>> @LOSSES.register("mine")
    ... class Mine: ...
    >>> LOSSES.get("mine") is Mine
    True
    """

    def __init__(self, kind: str, package: str | None = None, hooks: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self.hooks = hooks
        self._items: dict[str, type] = {}
        self._origin: dict[str, str] = {}
        self._source: dict[str, str] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        if not isinstance(name, str) or not name or name != name.strip():
            raise PluginError(f"{self.kind} name must be a non-empty string without spaces, got {name!r}")

        def decorator(cls: type[T]) -> type[T]:
            origin = _origin_of(cls)
            old = self._items.get(name)
            if old is not None and old is not cls:
                # Re-importing the same file (same module and qualified name) is not a conflict.
                if _same_definition(old, cls):
                    self._items[name] = cls
                    return cls
                raise PluginError(
                    f"{self.kind} name {name!r} is already registered by {self._origin[name]}; "
                    f"{origin} registers a different class under it: rename one of them"
                )
            self._items[name] = cls
            self._origin[name] = origin
            self._source[name] = _STATE.loading or _source_of_module(cls.__module__)
            cls.registered_name = name  # type: ignore[attr-defined]
            return cls

        return decorator

    def get(self, name: str) -> type:
        """The class registered as ``name``: this kind's built-ins load first, everything else only
        when the name is not among them (so ``extract`` with a built-in detector imports no torch)."""
        if self.package is not None:
            _load_builtins(self.package)
        if name not in self._items:
            load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise PluginError(self.unknown_message(name)) from None

    def build(self, name: str, settings: Mapping[str, Any] | None = None, **injected: Any) -> Any:
        """Instantiate ``name`` with its checked ``settings`` plus ``injected`` arguments, then check
        the kind's contract. Every problem is a one-line PluginError naming the plugin."""
        cls = self.get(name)
        hooks = self._hooks()
        not_settings = getattr(hooks, "INJECTED", ())
        for key in not_settings:
            if settings and key in settings:
                raise PluginError(f"{self.kind} {name!r}: {key!r} is set by the trainer, not by a setting; "
                                  "remove it")
        kwargs = check_settings(self.kind, name, cls, settings or {}, not_settings)
        params = constructor_settings(cls)
        kwargs.update({k: v for k, v in injected.items() if k in params})
        try:
            obj = cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise PluginError(f"{self.kind} {name!r}: {_one_line_text(exc)}") from None
        except (MemoryError, RuntimeError) as exc:
            if not isinstance(exc, MemoryError) and "alloc" not in str(exc):
                raise
            raise PluginError(f"{self.kind} {name!r} with settings {dict(settings or {})} does not fit in "
                              "memory; use smaller settings (a smaller width or latent for a model)") from None
        if hooks is not None:
            hooks.validate(name, obj, injected)
        return obj

    def build_table(self, table: Mapping[str, Any], **injected: Any) -> Any:
        """:meth:`build` for a config table such as ``[model]``: its ``name`` and its settings."""
        settings = dict(table)
        return self.build(settings.pop("name"), settings, **injected)

    def describe(self, name: str) -> PluginInfo:
        """The one-line doc, the settings with their defaults and the kind's facts of ``name``."""
        cls = self.get(name)
        hooks = self._hooks()
        injected = getattr(hooks, "INJECTED", ())
        settings = {k: "(required)" if p.default is inspect.Parameter.empty else repr(p.default)
                    for k, p in constructor_settings(cls).items() if k not in injected}
        facts = hooks.facts(cls) if hooks is not None else {}
        return PluginInfo(self.kind, name, first_doc_line(cls), settings, facts, self._source[name])

    def _hooks(self) -> Any:
        return importlib.import_module(self.hooks) if self.hooks else None

    def unknown_message(self, name: str) -> str:
        available = sorted(self._items)
        msg = f"unknown {self.kind} {name!r}"
        msg += did_you_mean(str(name), available)
        msg += f" Available: {', '.join(available) if available else '(none)'}."
        if _STATE.dirs:
            msg += f" Plugin folders searched: {', '.join(str(d) for d in _STATE.dirs)}."
        if _STATE.failures:
            msg += f" Plugins that failed to load: {'; '.join(str(f) for f in _STATE.failures)}."
        return msg

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, type]]:
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def unregister(self, name: str) -> None:
        """Remove a name (tests use this to keep the global registries clean)."""
        for d in (self._items, self._origin, self._source):
            d.pop(name, None)


def _source_of_module(module: str) -> str:
    """Where a class registered outside a plugin load came from (a built-in imported directly)."""
    if module.startswith("faceswap_lite.plugins.") and not module.startswith("faceswap_lite.plugins.examples."):
        return BUILT_IN
    return f"module {module}"


def _one_line_text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _origin_of(cls: type) -> str:
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    return f"{cls.__module__}.{cls.__qualname__}" + (f" ({path})" if path else "")


def _source_file(cls: type) -> str | None:
    try:
        return str(Path(inspect.getsourcefile(cls) or "").resolve())
    except (TypeError, OSError):
        return None


def _same_definition(a: type, b: type) -> bool:
    """The same class imported twice (same module, or the same file reached two ways)."""
    if a.__qualname__ != b.__qualname__:
        return False
    if a.__module__ == b.__module__:
        return True
    fa, fb = _source_file(a), _source_file(b)
    return fa is not None and fa == fb


LOSSES = Registry("loss", "faceswap_lite.plugins.losses", "faceswap_lite.losses.base")
DETECTORS = Registry("detector", "faceswap_lite.plugins.detectors", "faceswap_lite.extract.detect")
MODELS = Registry("model", "faceswap_lite.plugins.models", "faceswap_lite.models")
REGISTRIES = {"losses": LOSSES, "models": MODELS, "detectors": DETECTORS}  # as ``plugins KIND`` names them

register_loss = LOSSES.register
register_detector = DETECTORS.register
register_model = MODELS.register


class _LoadState:
    def __init__(self) -> None:
        self.builtins_loaded: set[str] = set()  # built-in packages imported
        self.entry_points_loaded = False
        self.dirs: list[Path] = []
        self.loaded_files: set[Path] = set()
        self.failures: list[PluginFailure] = []
        self.loading: str | None = None  # where the plugins being imported now come from


_STATE = _LoadState()


def plugin_failures() -> list[PluginFailure]:
    """Every plugin source that failed to import so far."""
    return list(_STATE.failures)


def _record(source: str, exc: BaseException) -> PluginFailure:
    failure = PluginFailure(source, _one_line(exc))
    if failure not in _STATE.failures:
        _STATE.failures.append(failure)
        log.warning("plugin %s failed to load: %s", source, failure.error)
        log.debug("%s", "".join(traceback.format_exception(exc)))
    return failure


@contextlib.contextmanager
def _loading(source: str) -> Iterator[None]:
    """Registrations made inside come from ``source`` (shown by ``describe``)."""
    before, _STATE.loading = _STATE.loading, source
    try:
        yield
    finally:
        _STATE.loading = before


def _load_builtins(package_name: str) -> None:
    """Import every module of one built-in plugin package (a broken one must not hide the others)."""
    if package_name in _STATE.builtins_loaded:
        return
    _STATE.builtins_loaded.add(package_name)
    package = importlib.import_module(package_name)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        name = f"{package_name}.{info.name}"
        try:
            with _loading(BUILT_IN):
                importlib.import_module(name)
        except Exception as exc:
            _record(name, exc)


def _load_entry_points() -> None:
    if _STATE.entry_points_loaded:
        return
    _STATE.entry_points_loaded = True
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            with _loading(f"{ENTRY_POINT} {ep.name}"):
                ep.load()
        except Exception as exc:
            dist = getattr(ep, "dist", None)
            where = f" from {dist.name}" if dist is not None else ""
            _record(f"entry point {ep.name} = {ep.value}{where}", exc)


def load_plugin_file(path: str | Path) -> PluginFailure | None:
    """Import one plugin file; return the failure (also recorded) instead of raising."""
    path = Path(path).resolve()
    if path in _STATE.loaded_files:
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
    _STATE.loaded_files.add(path)
    return None


def load_plugins(dirs: Iterable[str | Path] = (), kind: Registry | None = None) -> list[PluginFailure]:
    """Load built-ins (of every kind, or of ``kind`` alone), then entry points, then every ``*.py``
    file in each folder of ``dirs``.

    Idempotent: sources already loaded are not imported again. Returns the failures so far.
    A folder that does not exist is an error (a typo there would otherwise go unnoticed).
    """
    for registry in REGISTRIES.values() if kind is None else (kind,):
        if registry.package is not None:
            _load_builtins(registry.package)
    _load_entry_points()
    for d in dirs:
        folder = Path(d).expanduser().resolve()
        if not folder.is_dir():
            raise PluginError(f"plugin folder {str(d)!r} does not exist or is not a folder")
        if folder not in _STATE.dirs:
            _STATE.dirs.append(folder)
        for file in sorted(folder.glob("*.py")):
            if not file.name.startswith("_"):
                load_plugin_file(file)
    return plugin_failures()


# ---------------------------------------------------------------------------------------------
# Settings: config keys other than name/weight go to the plugin's constructor, checked first.


def constructor_settings(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword settings a plugin class takes (its ``__init__`` signature, minus self)."""
    params = inspect.signature(cls.__init__).parameters
    return {
        n: p
        for n, p in params.items()
        if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _type_ok(value: Any, default: Any, annotation: Any) -> bool:
    """Accept a value when it has the default's type (int is fine where float is expected)."""
    if default is inspect.Parameter.empty or default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, tuple | list):
        return isinstance(value, tuple | list)
    return isinstance(value, type(default))


def check_settings(kind: str, name: str, cls: type, settings: Mapping[str, Any],
                   injected: Iterable[str] = ()) -> dict[str, Any]:
    """Check ``settings`` against ``cls``'s constructor (less the ``injected`` arguments, which are
    not settings); return them (tuples for lists)."""
    params = {k: p for k, p in constructor_settings(cls).items() if k not in set(injected)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in params:
            if takes_any:
                out[key] = value
                continue
            hint = did_you_mean(key, list(params))
            known = ", ".join(params) if params else "(none)"
            raise PluginError(f"{kind} {name!r} has no setting {key!r}{hint} Its settings: {known}.")
        p = params[key]
        if not _type_ok(value, p.default, p.annotation):
            raise PluginError(
                f"{kind} {name!r} setting {key!r} must be {type(p.default).__name__} "
                f"(like the default {p.default!r}), got {type(value).__name__} {value!r}"
            )
        if isinstance(p.default, float) and isinstance(value, int):
            value = float(value)
        if isinstance(p.default, tuple) and isinstance(value, list):
            value = tuple(value)
        out[key] = value
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in out]
    if missing:
        raise PluginError(f"{kind} {name!r} needs the setting(s) {', '.join(missing)}")
    return out


def first_doc_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
