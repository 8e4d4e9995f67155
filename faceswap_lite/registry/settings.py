"""Plugin settings: a plugin's constructor keywords, and the check of the values a config gives them.

A setting's type is its ``Literal[...]`` annotation when it has one (its choices), else the type of
its default; :func:`faceswap_lite.settings.check_value` checks both, as it checks config keys, so
every "must be" message is worded alike.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import PluginError, did_you_mean
from ..settings import check_value, literal_choices


def constructor_settings(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword settings a plugin class takes (its ``__init__`` signature, minus self)."""
    params = inspect.signature(cls.__init__).parameters
    return {
        n: p
        for n, p in params.items()
        if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def setting_types(cls: type) -> dict[str, Any]:
    """``cls.__init__``'s annotations, resolved (plugin modules postpone them with ``from __future__
    import annotations``). One that cannot be resolved (a name imported for type checkers only) is
    left out rather than hiding the others."""
    init = cls.__init__
    try:
        return typing.get_type_hints(init)
    except Exception:  # any annotation's failure (NameError, TypeError, ...): resolve them one by one
        namespace = getattr(init, "__globals__", {})
        hints = {k: _resolved(v, namespace) for k, v in getattr(init, "__annotations__", {}).items()}
        return {k: v for k, v in hints.items() if v is not None}


def _resolved(annotation: Any, namespace: dict[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, namespace)  # what typing.get_type_hints does, for one annotation
    except Exception:
        return None


def check_choices(cls: type, **values: Any) -> None:
    """Raise ValueError when a value is not one of the choices its ``Literal`` annotation in
    ``cls.__init__`` declares: the check of a plugin built directly rather than by the registry
    (which has made it already), with the same message."""
    types = setting_types(cls)
    for key, value in values.items():
        check_value(key, value, types[key], error=ValueError)


def _check_setting(plugin: str, key: str, value: Any, default: Any, annotation: Any) -> Any:
    """One setting's value, checked against its Literal annotation, else the type of its default."""
    if literal_choices(annotation) is not None:
        return check_value(f"{plugin}: {key}", value, annotation, error=PluginError)
    if default is inspect.Parameter.empty or default is None:
        return value
    value = check_value(f"{plugin} setting {key!r}", value, type(default), error=PluginError)
    return tuple(value) if isinstance(default, tuple) else value


def check_settings(kind: str, name: str, cls: type, settings: Mapping[str, Any],
                   injected: Iterable[str] = ()) -> dict[str, Any]:
    """Check ``settings`` against ``cls``'s constructor (less the ``injected`` arguments, which are
    not settings); return them (floats for ints where the default is a float, tuples for lists)."""
    params = {k: p for k, p in constructor_settings(cls).items() if k not in set(injected)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
    types = setting_types(cls)
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key in params:
            out[key] = _check_setting(f"{kind} {name!r}", key, value, params[key].default, types.get(key))
        elif takes_any:
            out[key] = value
        else:
            hint = did_you_mean(key, list(params))
            known = ", ".join(params) if params else "(none)"
            raise PluginError(f"{kind} {name!r} has no setting {key!r}{hint} Its settings: {known}.")
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in out]
    if missing:
        raise PluginError(f"{kind} {name!r} needs the setting(s) {', '.join(missing)}")
    return out
