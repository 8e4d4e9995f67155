"""The run folder: the contract between train and what reads a run (preview, convert, evaluate, monitor).

A run folder (``faceswap-lite train -o RUN``) holds:
    config.toml                  the resolved config of the latest start (TOML); a resume without
                                 ``-c`` reads it back
    split.json                   the held-out split per side (``{"<side>": {"val": [file names],
                                 "train_count": N, ...}}``), written on the first start and read back
                                 on resume, so a resumed run validates on the faces it did before
    checkpoints/last.pt          the newest checkpoint (its format: :mod:`faceswap_lite.train.checkpoint`)
    checkpoints/step_NNNNNNN.pt  the kept periodic checkpoints (last.pt as it was at step N)
    previews/step_NNNNNNN.png    the preview grid at step N
    previews/latest.png          the newest preview grid
    tb/                          TensorBoard event files
    .lock                        the lock of the process writing the run (:meth:`RunFolder.lock`)

This module is the one place that names these paths. It reads and writes the plain files (the
config, the split, the TensorBoard scalars); checkpoint files are read and written by
:mod:`faceswap_lite.train.checkpoint`, which finds them here (:func:`checkpoint_candidates`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config, to_toml
from .faceset import FaceSetError
from .fsutil import FolderLock, write_atomic

if TYPE_CHECKING:
    from .data.split import Split

CONFIG = "config.toml"
SPLIT = "split.json"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
PREVIEWS = "previews"
LATEST_PREVIEW = "latest.png"
LR_FIND_CSV, LR_FIND_PNG = "lr_find.csv", "lr_find.png"
TB = "tb"
_STEP_CHECKPOINT = re.compile(r"^step_(\d{7,})\.pt$")


# ------------------------------------------------------------------------------------------------
# A checkpoints folder (also given on its own: a copied checkpoints/ folder, the tests' tmp folders)


def last_path(folder: str | Path) -> Path:
    return Path(folder) / LAST


def step_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step_{step:07d}.pt"


def step_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """The periodic checkpoints in ``folder`` as (step, path), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _STEP_CHECKPOINT.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def checkpoint_candidates(folder: str | Path) -> list[Path]:
    """The checkpoint files of ``folder``, newest first: last.pt (written first at every save, so
    never older than a step file), then the step files from the newest. Only files that exist."""
    candidates = [last_path(folder)] + [p for _, p in reversed(step_checkpoints(folder))]
    return [p for p in candidates if p.exists()]


# ------------------------------------------------------------------------------------------------
# The run folder


class RunFolder:
    """The paths of the run folder ``path`` and its plain files. Nothing is touched until asked."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def split(self) -> Path:
        return self.path / SPLIT

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def last(self) -> Path:
        return last_path(self.checkpoints)

    def step_checkpoint(self, step: int) -> Path:
        return step_path(self.checkpoints, step)

    @property
    def previews(self) -> Path:
        return self.path / PREVIEWS

    def preview(self, step: int) -> Path:
        return self.previews / f"step_{step:07d}.png"

    @property
    def latest_preview(self) -> Path:
        return self.previews / LATEST_PREVIEW

    @property
    def lr_find_csv(self) -> Path:
        """The learning-rate sweep of ``train --lr-find``: step, lr, loss, smoothed loss."""
        return self.path / LR_FIND_CSV

    @property
    def lr_find_png(self) -> Path:
        return self.path / LR_FIND_PNG

    @property
    def tb(self) -> Path:
        return self.path / TB

    def lock(self) -> FolderLock:
        """The lock a process writing this run holds (``with folder.lock():``); readers take none.
        Entering it makes the folder and its lock file when they do not exist."""
        return FolderLock(self.path, "run folder")

    @property
    def lock_file(self) -> Path:
        """The lock's file: left by every process that has locked the folder, so while it does not
        exist no process holds the lock."""
        return self.path / FolderLock.NAME

    def is_run(self) -> bool:
        """Whether the folder holds a run (its ``checkpoints/`` folder exists)."""
        return self.checkpoints.is_dir()

    def create(self) -> None:
        """Make the folder with its ``checkpoints/`` and ``previews/`` (kept when they exist)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        self.previews.mkdir(exist_ok=True)

    def write_config(self, cfg: Config) -> None:
        text = to_toml(cfg).encode()
        write_atomic(self.config, lambda fh: fh.write(text), sync_dir=True)

    def read_split(self) -> dict[str, Split]:
        """The run's saved split per side ({} when there is none yet)."""
        from .data.split import Split

        path = self.split
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FaceSetError(f"{path} cannot be read ({exc}); delete it to split the faces again") from None
        if not isinstance(data, Mapping):
            raise FaceSetError(f"{path} is not a JSON object; delete it to split the faces again")
        return {str(side): Split.from_json(d, f"{path} (side {side})") for side, d in data.items()}

    def write_split(self, splits: Mapping[str, Split]) -> None:
        """Write every side's split (atomically)."""
        doc = {s: sp.to_json() for s, sp in splits.items()}
        text = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
        write_atomic(self.split, lambda fh: fh.write(text), sync_dir=True)


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """A run's TensorBoard scalars, ``{tag: [(step, value), ...]}`` by step ({} without logs).

    Sorted by step: a resumed run's event files are read in name order, and two files written
    within one second are named by process id, not by time."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = RunFolder(run_dir).tb
    if not tb.is_dir():
        return {}
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: sorted((e.step, e.value) for e in acc.Scalars(t)) for t in acc.Tags()["scalars"]}
