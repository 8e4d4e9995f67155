"""``--mix NAME=SPEC``: a named list of ``[[loss]]`` tables, checked before anything trains.

SPEC is, tried in this order:

* a config file (``mixes/heavy.toml``): its ``[[loss]]`` tables (nothing else of it is used: every
  other setting comes from compare's base config, so that the mixes differ in their losses alone);
* a shipped recipe name (``lpips-mix``): its ``[[loss]]`` tables likewise;
* an inline list ``ssim:1,mae:1``: ``name[:weight][:key=value...]`` items separated by commas, the
  weight 1 when left out, values read as TOML (``lpips:0.1:net=vgg``, ``lpips:0.1:pretrained_trunk=false``).

Every loss name and setting is checked against the registry (built-ins, installed and ``--plugins-dir``
plugins) and the loss is built once, so a typo or a refused value is a one-line error (with a
suggestion) before anything trains. What only training can show (a loss the model's faces are too
small for, a non-finite stop) fails that mix alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import parse_override, read_toml, recipes
from ..errors import ConfigError, FaceswapLiteError
from ..registry import LOSSES

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
# Files compare writes into its folder: no mix may be named like them.
RESERVED = ("report.md", "report.json", "grid.png", "curves.png", "compare.json")


class MixError(FaceswapLiteError):
    """A ``--mix`` that cannot be used (bad name, unknown loss or setting, unreadable file)."""


@dataclass(frozen=True)
class Mix:
    name: str
    spec: str  # as the user wrote it
    losses: tuple[dict[str, Any], ...]  # resolved [[loss]] tables, weight always present

    def label(self) -> str:
        """``ssim×1 + mae×1``: the losses of the mix in one line."""
        return " + ".join(f"{d['name']}×{d['weight']:g}" + "".join(
            f" {k}={v}" for k, v in d.items() if k not in ("name", "weight")) for d in self.losses)


def parse_mixes(items: list[str] | tuple[str, ...]) -> list[Mix]:
    """``["mae=mae:1", "both=ssim:1,mae:1"]`` -> checked mixes (call after loading the plugins)."""
    if not items:
        raise MixError("no --mix given: add at least one, e.g. --mix ssim=ssim:1 --mix mae=mae:1")
    mixes: list[Mix] = []
    seen: dict[str, str] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name, spec = name.strip(), spec.strip()
        if not sep or not spec:
            raise MixError(f"--mix {item!r}: expected NAME=SPEC, e.g. --mix ssim_mae=ssim:1,mae:1")
        if not NAME_RE.match(name) or name in RESERVED:
            raise MixError(f"--mix {item!r}: the name {name!r} must be a folder name of letters, digits and "
                           "_ . + - (at most 64, not a report file name)")
        if name in seen:
            raise MixError(f"--mix name {name!r} is used twice ({seen[name]!r} and {spec!r}); give each mix "
                           "its own name")
        seen[name] = spec
        mixes.append(Mix(name, spec, tuple(resolve_spec(name, spec))))
    return mixes


def resolve_spec(name: str, spec: str) -> list[dict[str, Any]]:
    """SPEC -> checked ``[[loss]]`` tables (see the module docstring for the forms)."""
    path = Path(spec)
    if path.is_file() or spec.endswith(".toml"):
        losses = _losses_of(read_toml(path), f"config file {spec!r}")
    elif spec in recipes():
        losses = _losses_of(read_toml(spec), f"recipe {spec!r}")
    else:
        losses = [_inline_item(name, part) for part in spec.split(",")]
    for i, table in enumerate(losses):
        _check_loss(name, i, table)
    return losses


def _losses_of(data: dict[str, Any], where: str) -> list[dict[str, Any]]:
    losses = data.get("loss")
    if not isinstance(losses, list) or not losses:
        raise MixError(f"{where} has no [[loss]] tables; a mix needs at least one")
    out = []
    for i, table in enumerate(losses):
        if not isinstance(table, dict) or not isinstance(table.get("name"), str):
            raise MixError(f"{where}: loss[{i}] must be a table with name = \"...\"")
        out.append({"weight": 1.0, **table})
    return out


def _inline_item(mix: str, part: str) -> dict[str, Any]:
    """``lpips:0.1:net=vgg`` -> ``{"name": "lpips", "weight": 0.1, "net": "vgg"}``."""
    fields = [f.strip() for f in part.split(":")]
    if not fields[0]:
        raise MixError(f"--mix {mix}: empty loss in {part!r}; write name[:weight][:key=value], e.g. ssim:1")
    table: dict[str, Any] = {"name": fields[0], "weight": 1.0}
    rest = fields[1:]
    if rest and "=" not in rest[0]:
        try:
            table["weight"] = float(rest[0])
        except ValueError:
            raise MixError(f"--mix {mix}: weight {rest[0]!r} of {fields[0]!r} is not a number "
                           f"(write {fields[0]}:0.5 or {fields[0]}:key=value)") from None
        rest = rest[1:]
    for setting in rest:
        try:
            key, value = parse_override(setting, f"--mix {mix}", "net=vgg")
        except ConfigError as exc:
            raise MixError(exc.message) from None
        table[".".join(key)] = value
    return table


def _check_loss(mix: str, i: int, table: dict[str, Any]) -> None:
    """The loss exists, its weight is a finite number >= 0 and its settings fit its constructor."""
    name = table["name"]
    weight = table.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
        raise MixError(f"--mix {mix}: loss {name!r} weight must be a number >= 0 and finite, got {weight!r}")
    table["weight"] = float(weight)
    settings = {k: v for k, v in table.items() if k not in ("name", "weight")}
    try:
        LOSSES.build(name, settings)  # checks the name and settings, then the values the constructor refuses
    except FaceswapLiteError as exc:
        raise MixError(f"--mix {mix}: {exc.message}") from None
