"""Helpers the test folders share: tiny-model overrides, ``--set`` expansion, the CLI runner and
the registered plugins to parametrise the contract tests over."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from faceswap_lite import registry
from faceswap_lite.cli import main
from faceswap_lite.extract import ExtractOptions, ExtractSummary, plan_extract, run_extract

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "photos"  # the real public-domain photos every test that needs a face uses
EXAMPLES = ROOT / "faceswap_lite" / "plugins" / "examples"  # the user-style plugins, loaded as --plugins-dir would



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


def plugin_names(kind: str, dirs: Sequence[Path] = (EXAMPLES,)) -> list[str]:
    """The names of every ``kind`` plugin (built-ins, entry points, ``dirs``), leaving the registry as
    it was: for parametrising a contract test at collection time."""
    registry.load_plugins()  # the built-ins stay: their modules, once imported, do not register again
    with registry.scope():
        registry.load_plugins(dirs)
        return registry.REGISTRIES[kind].names()




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


@contextlib.contextmanager
def small_disk(folder: Path, megabytes: int = 1) -> Iterator[Path]:
    """``folder`` as a ``megabytes``-MB tmpfs (a full disk on demand); skips where mounting is not
    allowed (the file-size-limit twins in the tests cover that case)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here (needs root); the file-size-limit twin runs instead")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` bind-mounted read-only onto itself: writes fail even as root (where chmod does not
    stop them); falls back to chmod 555 where mounting is not allowed (then not as root)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("neither a read-only bind mount nor chmod stops root here")
        folder.chmod(0o555)
    try:
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)


# Faces each photo holds (checked by eye; see tests/photos/README.md).
EXPECTED_FACES = {
    "astronaut.jpg": 1,
    "biden.jpg": 1,
    "obama.jpg": 1,
    "obama2.jpg": 1,
    "obama3.jpg": 1,
    "rocket.jpg": 0,
}


def make_video(path: Path, frames: int = 24, fourcc: str = "mp4v", fps: float = 12.0) -> Path:
    """A ``frames``-long 320×240 video panning over tests/photos/obama.jpg (the face stays in view)."""
    img = cv2.imread(str(PHOTOS / "obama.jpg"))  # BGR only inside OpenCV I/O
    assert img is not None and img.shape[:2] == (500, 400)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (320, 240))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path.suffix}"
    for i in range(frames):
        t = i / max(frames - 1, 1)
        x, y = round(80 * t), round(60 * np.sin(np.pi * t))
        writer.write(np.ascontiguousarray(img[y:y + 240, x:x + 320]))
    writer.release()
    return path


def extract(inputs: list[Path | str], output: Path, **kw) -> ExtractSummary:
    """Plan and run an extraction with ``ExtractOptions(**kw)`` (one worker unless given)."""
    kw.setdefault("workers", 1)
    return run_extract(plan_extract([str(p) for p in inputs], output, ExtractOptions(**kw)))


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the (small) file system of ``disk`` with ``disk/.filler`` until ``leave`` bytes or fewer
    are free: a full disk, or one with room for a small file only."""
    import shutil

    filler = disk / ".filler"
    with open(filler, "ab", buffering=0) as fh:  # unbuffered: nothing left to flush when it is full
        try:
            while (free := shutil.disk_usage(disk).free) > leave:
                fh.write(b"\0" * max(4096, min(2**16, free - leave)))
        except OSError:  # full before ``leave`` was reached
            pass
    return filler


FILE_LIMIT_CLI = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from faceswap_lite.cli import main
main(sys.argv[2:], prog_name="faceswap-lite")
"""


def run_cli_with_file_limit(args: Sequence[str | Path], limit: int) -> subprocess.CompletedProcess:
    """``faceswap-lite ARGS`` in a subprocess (and its spawned workers) whose files cannot grow past
    ``limit`` bytes: writes fail with EFBIG, which faceswap-lite reports as a full disk. The
    full-disk twin that runs where :func:`small_disk` cannot mount."""
    return subprocess.run([sys.executable, "-c", FILE_LIMIT_CLI, str(limit), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def error_line(output: str) -> str:
    """The one line a failed command printed (asserted to be one ``Error: ...`` line; the INFO log
    lines a command run in a subprocess prints on its way are left out)."""
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(("INFO ", "DEBUG "))]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]
