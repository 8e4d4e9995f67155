"""Checkpoints: small explicit dicts, written atomically, loaded with ``weights_only=True``.

A checkpoint is written to a temporary file in the same folder, flushed and fsynced, then renamed
over the old one (``os.replace``) and the folder fsynced, so a crash at any instant leaves the
previous checkpoint or the new one, never a partial file. Loading never runs code from the file:
``torch.load(weights_only=True)`` refuses anything but tensors and plain containers. Which files a
run's checkpoints are, and in which order they are tried, is :mod:`faceswap_lite.runfolder`'s.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import FaceswapLiteError, first_line
from ..fsutil import DiskFullError, fsync_dir, write_atomic
from ..models import learns_mask
from ..runfolder import RunFolder, checkpoint_candidates, step_checkpoints

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_GIVE_ONE = "give a run folder or a checkpoint written by faceswap-lite train"


class CheckpointError(FaceswapLiteError):
    """A checkpoint that cannot be used. ``kind`` says why: one of the kinds below, or None."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


# CheckpointError.kind: UNSAFE and NEWER are refused outright; a CORRUPT file is skipped for an older one.
MISSING, UNWRITABLE, UNSAFE, CORRUPT, NOT_A_CHECKPOINT, NEWER = (
    "missing", "unwritable", "unsafe", "corrupt", "not a checkpoint", "newer format")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Save ``state`` (plus the format version) atomically. Raises :class:`CheckpointError` on I/O errors,
    leaving the previous file at ``path`` untouched."""
    path = Path(path)
    state = {"format_version": FORMAT_VERSION, **state}
    try:
        write_atomic(path, lambda fh: torch.save(state, fh), sync_dir=True)
    except DiskFullError as exc:
        raise CheckpointError(f"could not write checkpoint: {exc.reason} (the previous checkpoint is "
                              "intact; free disk space, then resume)", UNWRITABLE) from None
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {path}: {exc.strerror or exc} (the previous checkpoint is intact; "
            "free disk space or fix permissions, then resume)", UNWRITABLE
        ) from exc
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely. Raises :class:`CheckpointError` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found", MISSING)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if _refused_globals(path):
            # torch's own text is a page of advice about trusting the file: the user needs to know
            # it is not ours and was left unopened (its objects' code was not run).
            raise CheckpointError(f"{path} is not a faceswap-lite checkpoint (it holds Python objects, not only "
                                  f"tensors, so it was not opened); {_GIVE_ONE}", UNSAFE) from None
        raise CheckpointError(f"checkpoint {path} is corrupt ({first_line(exc, 160)})", CORRUPT) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({first_line(exc, 160)})", CORRUPT) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a faceswap-lite checkpoint (it has no format_version); {_GIVE_ONE}",
                              NOT_A_CHECKPOINT)
    version = state["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version!r}, newer than this faceswap-lite reads "
            f"({FORMAT_VERSION}); upgrade faceswap-lite", NEWER
        )
    return state


def _refused_globals(path: Path) -> list[str]:
    """The globals of a torch zip checkpoint that ``weights_only`` refuses; [] when the file is no
    intact zip checkpoint (then a refused unpickling means a damaged file, not an unsafe one).

    torch raises the same ``pickle.UnpicklingError`` for both, so the file itself tells them apart
    (a static scan of its pickle: nothing is run).
    """
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile):
        return []


def prune(folder: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` periodic checkpoints (last.pt is never touched)."""
    found = step_checkpoints(folder)
    removed = []
    for _, p in found[: max(0, len(found) - keep)]:
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def clean_temporaries(folder: str | Path) -> int:
    """Remove temporary files a killed writer left behind (``.NAME.*.tmp``). Returns how many."""
    n = 0
    for p in Path(folder).glob(".*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def link_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` hold ``src``'s bytes, atomically: a hard link (no second write) or a copy."""
    tmp = dst.parent / f".{dst.name}.link.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        write_atomic(dst, lambda fh: fh.write(Path(src).read_bytes()), sync_dir=True)
        return
    os.replace(tmp, dst)
    fsync_dir(dst.parent)


def latest_checkpoint(folder: str | Path, map_location: str | torch.device = "cpu") -> tuple[Path, dict] | None:
    """The newest loadable checkpoint of the checkpoints folder ``folder``: last.pt, else the newest
    step file that loads (:func:`~faceswap_lite.runfolder.checkpoint_candidates`).

    A corrupt file (a disk error, a file copied in by hand) is skipped with a warning. Unsafe or
    newer-format files are refused outright. None when there is no checkpoint.
    """
    errors = []
    for p in checkpoint_candidates(folder):
        try:
            return p, load_checkpoint(p, map_location)
        except CheckpointError as exc:
            if exc.kind in (UNSAFE, NEWER):
                raise
            errors.append(exc.message)
            log.warning("skipping %s", exc.message)
    if errors:
        raise CheckpointError(f"no loadable checkpoint in {folder}: {errors[0]}")
    return None


def find_run_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint file ``path``, or the newest loadable one of a run folder (its ``checkpoints/``
    folder, or the folder itself), loaded on the CPU."""
    path = Path(path)
    if path.is_file():
        return path, load_checkpoint(path)
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint at {path}: no such run folder or checkpoint file", MISSING)
    run = RunFolder(path)
    folder = run.checkpoints if run.is_run() else path
    found = latest_checkpoint(folder)
    if found is None:
        raise CheckpointError(f"no checkpoint in {folder}; train first (faceswap-lite train ... -o RUN) "
                              "or give a checkpoint file", MISSING)
    return found


@dataclass
class RunModel:
    """A trained model rebuilt from its checkpoint: in eval mode, on the device asked for."""

    model: nn.Module
    path: Path
    state: dict[str, Any]
    sides: list[str]

    @property
    def step(self) -> int:
        return int(self.state.get("step", 0))

    @property
    def learns_mask(self) -> bool:
        return learns_mask(self.model)


def load_run_model(path: str | Path, device: str | torch.device = "cpu", raw: bool = False) -> RunModel:
    """Load the newest loadable checkpoint of a run folder (or the checkpoint file ``path``), rebuild
    its model from the checkpoint's ``model_spec`` through ``MODELS.build_table`` and load the weights.

    The one loader of trained models (preview, evaluate, convert): a model trained on a GPU loads on
    the CPU. A run trained with ``train.ema`` loads its averaged weights unless ``raw``.
    Raises :class:`CheckpointError` with a one-line reason.
    """
    from ..registry import MODELS

    ckpt, state = find_run_checkpoint(path)
    spec = state.get("model_spec")
    if not isinstance(spec, dict) or "model" not in spec or "sides" not in spec:
        raise CheckpointError(f"checkpoint {ckpt} has no model_spec; it was not written by faceswap-lite train",
                              NOT_A_CHECKPOINT)
    sides = [str(s) for s in spec["sides"]]
    model = MODELS.build_table(spec["model"], sides=tuple(sides))
    try:
        model.load_state_dict(state["model"] if raw or state.get("ema") is None else state["ema"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {ckpt} does not fit its own model spec ({first_line(exc)})",
                              CORRUPT) from None
    model.to(device).eval()
    return RunModel(model, ckpt, state, sides)
