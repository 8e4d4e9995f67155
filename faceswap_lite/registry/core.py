"""The registries: a named dict of classes per plugin kind, filled by a decorator, which builds and
describes what it holds, and the scope that undoes registrations and loads (for tests)."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import PluginError, did_you_mean, first_line
from . import loading
from .settings import check_settings, constructor_settings

T = TypeVar("T")


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
    the trainer passes itself, never settings).

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
            self._source[name] = loading.STATE.loading or _source_of_module(cls.__module__)
            cls.registered_name = name  # type: ignore[attr-defined]
            return cls

        return decorator

    def get(self, name: str) -> type:
        """The class registered as ``name``: this kind's built-ins load first, everything else only
        when the name is not among them (so ``extract`` with a built-in detector imports no torch)."""
        if self.package is not None:
            loading.load_builtins(self.package)
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
            raise PluginError(f"{self.kind} {name!r}: {first_line(exc)}") from None
        except (MemoryError, RuntimeError) as exc:
            if not _out_of_memory(exc):
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
        if loading.STATE.dirs:
            msg += f" Plugin folders searched: {', '.join(str(d) for d in loading.STATE.dirs)}."
        if loading.STATE.failures:
            msg += f" Plugins that failed to load: {'; '.join(str(f) for f in loading.STATE.failures)}."
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

    @contextlib.contextmanager
    def _kept(self) -> Iterator[None]:
        """What is registered is put back as it was on leaving (see :func:`scope`)."""
        saved = dict(self._items), dict(self._origin), dict(self._source)
        try:
            yield
        finally:
            self._items, self._origin, self._source = saved


def _out_of_memory(exc: BaseException) -> bool:
    """An allocation failure, told by its type: Python's, or torch's (looked up, not imported: a
    process that has not imported torch cannot have run out of memory in it)."""
    torch = sys.modules.get("torch")
    return isinstance(exc, MemoryError) or (torch is not None and isinstance(exc, torch.OutOfMemoryError))


def _source_of_module(module: str) -> str:
    """Where a class registered outside a plugin load came from (a built-in imported directly)."""
    if module.startswith("faceswap_lite.plugins.") and not module.startswith("faceswap_lite.plugins.examples."):
        return loading.BUILT_IN
    return f"module {module}"


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


def first_doc_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


LOSSES = Registry("loss", "faceswap_lite.plugins.losses", "faceswap_lite.losses.base")
DETECTORS = Registry("detector", "faceswap_lite.plugins.detectors", "faceswap_lite.extract.detect")
MODELS = Registry("model", "faceswap_lite.plugins.models", "faceswap_lite.models")
REGISTRIES = {"losses": LOSSES, "models": MODELS, "detectors": DETECTORS}  # as ``plugins KIND`` names them

register_loss = LOSSES.register
register_detector = DETECTORS.register
register_model = MODELS.register


def load_plugins(dirs: Iterable[str | Path] = (), kind: Registry | None = None) -> list[loading.PluginFailure]:
    """Load built-ins (of every kind, or of ``kind`` alone), then entry points, then every ``*.py``
    file in each folder of ``dirs``.

    Idempotent: sources already loaded are not imported again. Returns the failures so far.
    A folder that does not exist is an error (a typo there would otherwise go unnoticed).
    """
    for registry in REGISTRIES.values() if kind is None else (kind,):
        if registry.package is not None:
            loading.load_builtins(registry.package)
    loading.load_entry_points()
    loading.load_folders(dirs)
    return loading.plugin_failures()


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Everything registered, loaded or recorded as failed inside is forgotten on leaving: the
    registries and the loader are as they were. Tests run in one so that the plugins a test loads
    (and their failures) do not reach the next one; a module imported inside stays imported, so the
    built-ins are best loaded before entering."""
    with contextlib.ExitStack() as stack:
        for registry in REGISTRIES.values():
            stack.enter_context(registry._kept())
        stack.enter_context(loading.kept_state())
        yield
