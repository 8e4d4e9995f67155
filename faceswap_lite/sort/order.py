"""Rank a scanned face set by one key, and put the ranked faces into an output folder.

Keys (:data:`KEYS`): ``blur`` (sharpest first), ``identity`` (nearest the set's identity, or the
references', first), ``yaw``, ``pitch``, ``roll`` (ascending: turned left to right, down to up,
anticlockwise to clockwise), ``size`` (largest first), ``score`` (highest first) and ``face``
(groups of one person, largest group first; in a group, nearest its centre first).

The output is written file by file through :func:`~faceswap_lite.fsutil.write_atomic` (or a rename
with ``move``), so an interrupted sort leaves whole files, and nothing is ever deleted: ``move``
moves faces out of the set into the output folder. While it fills, the output folder holds the plan
(``.sort.json``): the same command run again after a full disk or Ctrl-C goes on with it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import identity
from ..errors import FaceswapLiteError
from ..fsutil import DiskFullError, check_output_folder, full_disk_is_an_error, write_atomic
from . import measures
from .scan import Face, Scan


class SortError(FaceswapLiteError):
    """A sort request that cannot be carried out (bad key, bins or output folder)."""


@dataclass(frozen=True)
class Key:
    """A sort key: what it means, which order, and what the scan must compute for it."""

    help: str
    value: Callable[[Face], float] | None  # None: computed over the whole set (identity, face)
    descending: bool = False
    sharp: bool = False
    descriptors: bool = False


KEYS: dict[str, Key] = {
    "blur": Key("sharpest first (variance of the Laplacian in the face)", lambda f: f.sharpness,
                descending=True, sharp=True),
    "identity": Key("nearest the set's identity (or --identity's) first (descriptor distance)", None,
                    descriptors=True),
    "yaw": Key("turned to the image's left first, to its right last", lambda f: measures.yaw(f.meta)),
    "pitch": Key("looking down first, up last", lambda f: measures.pitch(f.meta)),
    "roll": Key("tilted anticlockwise first, clockwise last (degrees)", lambda f: measures.roll(f.meta)),
    "size": Key("largest in its source first (eyebrows-to-mouth box, source pixels)",
                lambda f: measures.face_size(f.meta), descending=True),
    "score": Key("highest detector score first", lambda f: f.meta.score, descending=True),
    "face": Key("one folder per person (descriptor groups), largest group first", None, descriptors=True),
}


@dataclass
class Ranked:
    """One face in the sorted order: its key value, and its group for ``face``."""

    face: Face
    value: float
    group: int = 0


def rank(scan: Scan, by: str, references: np.ndarray | None = None,
         threshold: float = identity.DEFAULT_THRESHOLD) -> list[Ranked]:
    """The faces of ``scan`` in the order of key ``by`` (ties: by file name)."""
    key = KEYS[by]
    if by == "face":
        return _by_group(scan, threshold)
    if by == "identity":
        descs = scan.descriptors()
        refs = references if references is not None else (
            identity.centre(descs, threshold)[None] if len(descs) else descs)
        values = identity.distances(descs, refs)
    else:
        assert key.value is not None
        values = np.array([key.value(f) for f in scan.faces], dtype=np.float64)
    sign = -1.0 if key.descending else 1.0
    order = sorted(range(len(scan.faces)), key=lambda i: (sign * values[i], scan.faces[i].path.name))
    return [Ranked(scan.faces[i], float(values[i])) for i in order]


def _by_group(scan: Scan, threshold: float) -> list[Ranked]:
    descs = scan.descriptors()
    labels = identity.group(descs, threshold)
    out: list[Ranked] = []
    for label in range(int(labels.max()) + 1 if len(labels) else 0):
        members = np.flatnonzero(labels == label)
        dist = identity.distances(descs[members], descs[members].mean(0)[None])
        for k in sorted(range(len(members)), key=lambda k: (dist[k], scan.faces[members[k]].path.name)):
            out.append(Ranked(scan.faces[members[k]], float(dist[k]), group=label))
    return out


# ----------------------------------------------------------------------------------------------
# The output folder.


UNFINISHED = ".sort.json"  # in an output folder while a sort fills it: what a re-run needs to go on


def request_of(folder: Path, by: str, bins: int, move: bool) -> dict[str, Any]:
    """What makes two sorts the same one (a re-run of an unfinished sort goes on with its plan)."""
    return {"faceset": str(folder.resolve()), "by": by, "bins": bins, "move": move}


def check_output(folder: Path, out: Path, request: dict[str, Any]) -> list[tuple[Path, Path]] | None:
    """OUT must not be inside the face set, and must be new or empty (checked before any write),
    or hold an unfinished sort of the same ``request``: then the (source, target) pairs it
    recorded, for the re-run to go on with (a full disk or Ctrl-C stopped it)."""
    src, dst = folder.resolve(), out.resolve()
    if dst == src or src in dst.parents:
        raise SortError(f"output {str(out)!r} is inside the face set {str(folder)!r}; give a folder "
                        "outside it (e.g. next to it)")
    check_output_folder(out, SortError)
    if not out.exists() or not any(out.iterdir()):
        return None
    recorded = _read_unfinished(out)
    if recorded is None:
        raise SortError(f"output folder {str(out)!r} already holds files; give a new or empty folder")
    if recorded.get("request") != request:
        was = recorded.get("request") or {}
        raise SortError(f"output folder {str(out)!r} holds an unfinished sort of {was.get('faceset')!r} by "
                        f"{was.get('by')} (bins {was.get('bins')}, move {was.get('move')}): run that sort again "
                        "to finish it, or give a new or empty folder")
    pairs = [(folder / name, out / target) for name, target in recorded["plan"]]
    targets = {t for _, t in pairs} | {out / UNFINISHED}
    foreign = [p for p in sorted(out.rglob("*")) if p.is_file() and p not in targets]
    if foreign:
        raise SortError(f"output folder {str(out)!r} holds {foreign[0].name}, which its unfinished sort did not "
                        "put there; give a new or empty folder")
    return pairs


def _read_unfinished(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out / UNFINISHED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("plan"), list)
    return data if ok and all(isinstance(p, list) and len(p) == 2 for p in data["plan"]) else None


def destinations(ranked: list[Ranked], out: Path, by: str, bins: int = 0) -> list[Path]:
    """Where each ranked face goes: ``OUT/<rank>_<name>``; in ``bins`` folders ``OUT/bin_<k>/``
    (equal shares, in order); for ``face`` in ``OUT/group_<k>/`` with its rank in its group."""
    width = max(5, len(str(len(ranked))))
    if by == "face":
        counts: dict[int, int] = {}
        paths = []
        for r in ranked:
            counts[r.group] = counts.get(r.group, 0) + 1
            paths.append(out / f"group_{r.group + 1:03d}" / f"{counts[r.group]:0{width}d}_{r.face.path.name}")
        return paths
    paths = []
    for i, r in enumerate(ranked):
        folder = out / f"bin_{i * bins // len(ranked) + 1:0{len(str(bins))}d}" if bins else out
        paths.append(folder / f"{i + 1:0{width}d}_{r.face.path.name}")
    return paths


def fill_output(out: Path, sources: list[Path], targets: list[Path], move: bool, request: dict[str, Any]) -> int:
    """Copy (or move) each source to its target, the plan recorded in ``OUT/.sort.json`` until the
    last face lands, so a sort stopped by a full disk or Ctrl-C goes on when run again. Returns how
    many faces were already in place (from the stopped sort)."""
    record = out / UNFINISHED
    plan = [[src.name, dst.relative_to(out).as_posix()] for src, dst in zip(sources, targets)]
    text = json.dumps({"version": 1, "request": request, "plan": plan}, indent=1).encode("utf-8")
    with full_disk_is_an_error(out):
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(record, lambda fh: fh.write(text))
        try:
            there = place(sources, targets, move)
        except DiskFullError as exc:
            done = sum(t.exists() for t in targets)
            raise DiskFullError(exc.reason, f"free some space and run the same command again: it goes on from the "
                                            f"{done} faces {'moved' if move else 'copied'} into {out} so far "
                                            "(nothing was deleted)") from None
    record.unlink()
    return there


def place(sources: list[Path], targets: list[Path], move: bool = False) -> int:
    """Copy (or move) each source to its target; each file lands whole or not at all. A target
    already there is a face an unfinished sort placed: it is kept. Returns how many were."""
    there = 0
    for src, dst in zip(sources, targets):
        if dst.exists():
            there += 1
            continue
        if not src.exists():
            raise SortError(f"{src} has left the face set since this sort began; delete {dst.parent} and sort again")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.replace(src, dst)  # atomic on one file system
                continue
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        with open(src, "rb") as fh:
            write_atomic(dst, lambda out, fh=fh: shutil.copyfileobj(fh, out))
        if move:
            src.unlink()
    return there
