"""Helpers the test folders share: tiny-model overrides, ``--set`` expansion, the CLI runner and
the registered plugins to parametrise the contract tests over."""

from __future__ import annotations

import copy
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from click.testing import CliRunner, Result

from faceswap_lite import registry
from faceswap_lite.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "plugins" / "examples"  # the user-style plugins, loaded as --plugins-dir would



def model_sets(settings: dict[str, Any]) -> list[str]:
    """``{"width": 0.5}`` -> ``["model.width=0.5"]``: a ``[model]`` table as ``--set`` overrides."""
    return [f"model.{k}={v}" for k, v in settings.items()]


# A model small enough to train a few steps on a CPU in a test.
TINY_MODEL_SETTINGS: dict[str, Any] = {"width": 1 / 32, "latent": 32}
TINY_MODEL = model_sets(TINY_MODEL_SETTINGS)
# A tiny SAE's widths (a recipe's resolution kept), and a 64-px tiny SAE (learn_mask on by default;
# add model.arch=df or liae).
TINY_SAE_DIMS: dict[str, Any] = {"ae_dims": 16, "e_dims": 4, "d_dims": 4, "d_mask_dims": 2}
TINY_SAE_SETTINGS: dict[str, Any] = {"resolution": 64, **TINY_SAE_DIMS}
TINY_SAE = ["model.name=sae", *model_sets(TINY_SAE_SETTINGS)]


def sets(overrides: Iterable[str]) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [x for kv in overrides for x in ("--set", kv)]


def run_cli(args: Sequence[str], expect: int | None = 0, catch_exceptions: bool = False) -> Result:
    """Invoke ``faceswap-lite ARGS`` in process; check the exit code unless ``expect`` is None."""
    res = CliRunner().invoke(main, list(args), catch_exceptions=catch_exceptions)
    if expect is not None:
        assert res.exit_code == expect, res.output
    return res


def snapshot_registries() -> list[dict[str, Any]]:
    """Every registry's and the loader's state, for :func:`restore_registries`."""
    regs = (*registry.REGISTRIES.values(), registry._STATE)
    return [{k: copy.copy(v) for k, v in vars(r).items()} for r in regs]


def restore_registries(saved: list[dict[str, Any]]) -> None:
    for r, fields in zip((*registry.REGISTRIES.values(), registry._STATE), saved):
        vars(r).update(fields)


def plugin_names(kind: str, dirs: Sequence[Path] = (EXAMPLES,)) -> list[str]:
    """The names of every ``kind`` plugin (built-ins, entry points, ``dirs``), leaving the registry as
    it was: for parametrising a contract test at collection time."""
    registry.load_plugins()  # the built-ins stay: their modules, once imported, do not register again
    saved = snapshot_registries()
    try:
        registry.load_plugins(dirs)
        return registry.REGISTRIES[kind].names()
    finally:
        restore_registries(saved)


ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str) -> ModuleType:
    """A script of the repository (``tools/bench_sort.py``) as a module, registered in sys.modules
    under its stem (dataclasses look their module up there)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module
