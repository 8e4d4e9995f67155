"""Declared settings and the one checker for them: config sections, command options and plugin settings.

A setting is declared once, as a dataclass field made by :func:`setting` (its default, its doc and
its bounds or choices in the field's metadata), or, for a plugin, as a constructor keyword whose
annotation may be a ``Literal[...]`` of its choices. :func:`check_value` checks one value against
such a declaration and :func:`check_fields` checks every field of a dataclass instance, so a range
or a list of choices is written in one place and every "must be one of" message is worded alike.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .errors import ConfigError

BOUNDS = ("min", "max", "gt", "lt", "choices")  # the bounds a setting may declare


def setting(default: Any, doc: str, **bounds: Any) -> Any:
    """A dataclass field with its doc and bounds: ``min``, ``max`` (inclusive), ``gt``, ``lt``
    (exclusive), ``choices``."""
    unknown = set(bounds) - set(BOUNDS)
    if unknown:
        raise TypeError(f"setting(): unknown bound(s) {sorted(unknown)}")
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc, **bounds})
    return dataclasses.field(default=default, metadata={"doc": doc, **bounds})


def literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    """The values of a ``Literal[...]`` annotation (also inside ``Optional``), else None."""
    if isinstance(annotation, str):  # a postponed annotation that was not resolved
        return None
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = literal_choices(arg)
            if found is not None:
                return found
    return None


def type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _has_type(value: Any, tp: Any) -> tuple[bool, Any]:
    """Whether ``value`` is of the plain type ``tp`` (an int passes for a float); the value, coerced."""
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp in (list, tuple):
        return isinstance(value, list | tuple), value
    return isinstance(value, tp), value


def check_value(where: str, value: Any, tp: Any, bounds: Mapping[str, Any] | None = None,
                error: Callable[[str], Exception] = ConfigError) -> Any:
    """Check ``value`` for the setting ``where`` of type ``tp`` (a plain type or a ``Literal``) and
    its ``bounds`` (see :data:`BOUNDS`); return it (an int given for a float as a float)."""
    bounds = dict(bounds or {})
    choices = literal_choices(tp)
    if choices is not None:
        bounds.setdefault("choices", choices)
        tp = type(choices[0])
    ok, value = _has_type(value, tp)
    if not ok:
        raise error(f"{where} must be {type_name(tp)}, got {type(value).__name__} {value!r}")
    check_finite(where, value, error)
    if "choices" in bounds and value not in bounds["choices"]:
        raise error(f"{where} must be one of {', '.join(map(repr, bounds['choices']))}, got {value!r}")
    if "min" in bounds and value < bounds["min"]:
        raise error(f"{where} must be >= {bounds['min']}, got {value!r}")
    if "max" in bounds and value > bounds["max"]:
        raise error(f"{where} must be <= {bounds['max']}, got {value!r}")
    if "gt" in bounds and not value > bounds["gt"]:  # ``not``: NaN fails too
        raise error(f"{where} must be > {bounds['gt']}, got {value!r}")
    if "lt" in bounds and not value < bounds["lt"]:
        raise error(f"{where} must be < {bounds['lt']}, got {value!r}")
    return value


def check_finite(where: str, value: Any, error: Callable[[str], Exception] = ConfigError) -> None:
    """Refuse a NaN or infinite float (TOML and click read ``nan`` and ``inf`` as floats): no bound
    would stop one (every comparison with NaN is false) and no setting means anything by it."""
    if isinstance(value, float) and not math.isfinite(value):
        raise error(f"{where} must be a finite number, got {value!r}")


class _Problem(Exception):
    """One field's problem, collected by :func:`check_fields`."""


def check_fields(obj: Any, name_of: Callable[[str], str] = str,
                 error: Callable[[str], Exception] = ConfigError) -> None:
    """Check every declared field of the dataclass instance ``obj`` that has bounds, and that every
    float is finite; problems are joined into one error, each named by ``name_of(field name)`` (an
    option's ``--flag``)."""
    hints = typing.get_type_hints(type(obj))
    problems = []
    for f in dataclasses.fields(obj):
        bounds = {k: f.metadata[k] for k in BOUNDS if k in f.metadata}
        value = getattr(obj, f.name)
        if value is None or not (bounds or isinstance(value, float)):
            continue
        try:
            if bounds:
                check_value(name_of(f.name), value, _plain(hints[f.name]), bounds, _Problem)
            else:
                check_finite(name_of(f.name), value, _Problem)
        except _Problem as exc:
            problems.append(str(exc))
    if problems:
        raise error("; ".join(problems))


def _plain(tp: Any) -> Any:
    """``int | None`` -> ``int``; ``tuple[int, ...]`` -> ``tuple``; a Literal stays as it is."""
    if literal_choices(tp) is not None and typing.get_origin(tp) is Literal:
        return tp
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return _plain(args[0])
    return typing.get_origin(tp) or tp
