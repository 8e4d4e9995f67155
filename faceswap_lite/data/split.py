"""The held-out split: a contiguous segment of each clip, with a guard gap on each side, and whole photos.

Neighbouring frames of a video are near copies, so a held-out frame with a trained neighbour
measures memorisation, not the face. Per video source the split holds out one contiguous segment of
about ``val_fraction`` of its faces (capped by ``max_val`` over the whole set), and leaves a guard
gap of ``gap`` source frames on each side of it that is used for neither training nor validation
(listed in ``split.json`` as ``gap``): every held-out face is more than ``gap`` frames from every
trained face of its clip. Where the segment sits in the clip is drawn from a hash of the source, so
it does not depend on the rest of the face set. A clip too short for one face of segment, its gaps
and one trained face gives no held-out faces, and says so (:attr:`Split.short`). A photo is its own
unit, held out whole when the hash of its name falls under ``val_fraction``.

The interface is small on purpose:

* :class:`FaceKey` is all the split knows of a face file: its name, source and frame.
* :func:`split_faces` takes the keys (in face-set order), ``val_fraction``, ``max_val``, the gap and
  the :class:`Split` saved at a run's first start, and returns ``(train indices, validation indices,
  the split to save)``; :func:`nearest_trained` says how far the held-out faces are from training.
* :class:`Split` is what the run folder's ``split.json`` holds per side (:meth:`Split.to_json`,
  :meth:`Split.from_json`); reading and writing the file is :class:`~faceswap_lite.runfolder.RunFolder`'s.

A saved split is kept on resume: a clip's segment is a range of source frames, so faces added later
fall on the side their frame lies on, deleted ones drop out, and nothing moves across. Splits saved
before segments (blocks of ``block`` frames) are read and kept as they were.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..faceset import FaceSetError

DEFAULT_GAP = 30  # source frames: 1.25 s at 24 fps, 1 s at 30, 0.5 s at 60


@dataclass(frozen=True)
class FaceKey:
    """What the held-out split needs to know of one face file: its name, source and frame."""

    name: str
    source: str
    frame: int | None


def _unit_hash(text: str) -> float:
    """SHA-1 of ``text`` mapped to [0, 1): a rank that never changes with the rest of the face set."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big") / 2.0**64


def unit_of(key: FaceKey) -> str:
    """The split unit of a face outside any video: its photo, or its file for hand-made sets."""
    return key.source or f"file:{key.name}"


def block_of(key: FaceKey, block: int) -> str:
    """The block of a face in splits saved before segments: a photo, or ``block`` frames of a video."""
    if not key.source:
        return f"file:{key.name}"
    return key.source if key.frame is None else f"{key.source}#{int(key.frame) // block}"


@dataclass
class Split:
    """A side's held-out split, as ``split.json`` keeps it.

    ``segments``: per video source, the held-out range of source frames ``[first, last]``;
    ``train_sources``: the clips that got none (too short, or the ``max_val`` room was used up), so
    frames added to them later train; ``val_units`` / ``train_units``: photos (and files without a
    source) by side. ``val_files`` and ``gap_files`` name the files, ``train_count`` counts the rest.
    ``block`` is set only for a split saved before segments (its ``val_units`` are then blocks).
    """

    gap: int
    segments: dict[str, tuple[int, int]] = field(default_factory=dict)
    train_sources: set[str] = field(default_factory=set)
    val_units: set[str] = field(default_factory=set)
    train_units: set[str] = field(default_factory=set)
    val_files: list[str] = field(default_factory=list)
    gap_files: list[str] = field(default_factory=list)
    train_count: int = 0
    block: int | None = None
    short: list[str] = field(default_factory=list)  # clips too short to hold a segment (this call only)

    def to_json(self) -> dict[str, Any]:
        if self.block is not None:
            return {"val": sorted(self.val_files), "train_count": self.train_count, "block": self.block,
                    "val_blocks": sorted(self.val_units), "train_blocks": sorted(self.train_units)}
        return {"val": sorted(self.val_files), "gap": sorted(self.gap_files), "train_count": self.train_count,
                "val_gap": self.gap, "segments": {s: list(r) for s, r in sorted(self.segments.items())},
                "train_sources": sorted(self.train_sources), "val_units": sorted(self.val_units),
                "train_units": sorted(self.train_units)}

    @classmethod
    def from_json(cls, d: Any, where: str) -> Split:
        try:
            if "block" in d:  # saved before segments: keep its blocks
                return cls(0, val_units=set(map(str, d["val_blocks"])), train_units=set(map(str, d["train_blocks"])),
                           val_files=[str(n) for n in d["val"]], train_count=int(d["train_count"]),
                           block=int(d["block"]))
            return cls(int(d["val_gap"]), {str(s): (int(r[0]), int(r[1])) for s, r in d["segments"].items()},
                       set(map(str, d["train_sources"])), set(map(str, d["val_units"])),
                       set(map(str, d["train_units"])), [str(n) for n in d["val"]], [str(n) for n in d["gap"]],
                       int(d["train_count"]))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise FaceSetError(f"{where} is damaged ({type(exc).__name__}: {exc}); delete it to split the "
                               "faces again (faces may then move between training and validation)") from None


VAL, GAP, TRAIN = "val", "gap", "train"


def _side_in_segment(frame: int, segment: tuple[int, int], gap: int) -> str:
    lo, hi = segment
    if lo <= frame <= hi:
        return VAL
    return GAP if lo - gap <= frame <= hi + gap else TRAIN


def place_segment(frames: Sequence[int], size: int, gap: int, u: float) -> tuple[int, int] | None:
    """The frame range of a ``size``-face segment of a clip whose faces sit at the sorted ``frames``,
    leaving at least one face outside the segment and its gaps; ``u`` in [0, 1) picks among the
    places that do. None when the clip is too short."""
    fits = []
    for start in range(len(frames) - size + 1):
        lo, hi = frames[start], frames[start + size - 1]
        trained = bisect.bisect_left(frames, lo - gap) + len(frames) - bisect.bisect_right(frames, hi + gap)
        if trained >= 1:
            fits.append((lo, hi))
    return fits[int(u * len(fits))] if fits else None


def split_faces(keys: Sequence[FaceKey], val_fraction: float, max_val: int, gap: int = DEFAULT_GAP,
                previous: Split | None = None) -> tuple[list[int], list[int], Split]:
    """Hold out a guarded segment of each clip and whole photos (see the module's docstring).

    Clips and photos are taken in the order of their hash while the held-out faces stay within
    ``max_val``; at least one face stays for training. When no photo falls under ``val_fraction``
    (a small set of photos), the lowest-ranked one is held out, so small sets still get a validation
    figure. ``previous``: the split saved at the first start, whose segments, clips and photos keep
    their side (and whose gap wins over ``gap``). Returns (train indices, validation indices, the
    split to save), indices in the order of ``keys``.
    """
    if previous is not None and previous.block is not None:
        return _split_by_blocks(keys, previous)
    split = Split(previous.gap if previous else int(gap))
    if previous is not None:
        split.segments, split.train_sources = dict(previous.segments), set(previous.train_sources)
        split.val_units, split.train_units = set(previous.val_units), set(previous.train_units)
    clips: dict[str, list[int]] = {}
    units: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        (clips if k.source and k.frame is not None else units).setdefault(
            k.source if k.frame is not None and k.source else unit_of(k), []).append(i)
    on = val_fraction > 0 and max_val > 0 and len(keys) >= 2
    side = ["train"] * len(keys)
    held = _assign_known(keys, clips, units, split, side, set(previous.val_files) if previous else set(), max_val)
    if on:
        held = _assign_new_clips(keys, clips, split, side, val_fraction, max_val, held)
        _assign_new_units(units, split, side, val_fraction, max_val, held, len(keys), first=previous is None)
    for source in clips:
        if source not in split.segments:
            split.train_sources.add(source)
    split.train_units |= {u for u in units if u not in split.val_units}
    val_idx = [i for i, s in enumerate(side) if s == VAL]
    train_idx = [i for i, s in enumerate(side) if s == TRAIN]
    split.val_files = [keys[i].name for i in val_idx]
    split.gap_files = [keys[i].name for i, s in enumerate(side) if s == GAP]
    split.train_count = len(train_idx)
    return train_idx, val_idx, split


def _assign_known(keys: Sequence[FaceKey], clips: dict[str, list[int]], units: dict[str, list[int]],
                  split: Split, side: list[str], was_held: set[str], max_val: int) -> int:
    """Faces of clips and photos the saved split knows take its side; returns how many are held out.
    Frames added inside a held-out segment beyond ``max_val`` go to the gap (never to training)."""
    for source, segment in split.segments.items():
        for i in clips.get(source, ()):
            side[i] = _side_in_segment(int(keys[i].frame), segment, split.gap)  # type: ignore[arg-type]
    for unit in split.val_units:
        for i in units.get(unit, ()):
            side[i] = VAL
    held = [i for i, s in enumerate(side) if s == VAL]
    new = [i for i in held if keys[i].name not in was_held]
    for i in new[max(0, max_val - (len(held) - len(new))):]:
        side[i] = GAP
    return side.count(VAL)


def _assign_new_clips(keys: Sequence[FaceKey], clips: dict[str, list[int]], split: Split, side: list[str],
                      val_fraction: float, max_val: int, held: int) -> int:
    new = sorted((_unit_hash(s), s) for s in clips if s not in split.segments and s not in split.train_sources)
    for u, source in new:
        members = sorted(clips[source], key=lambda i: keys[i].frame)  # type: ignore[arg-type, return-value]
        frames = [int(keys[i].frame) for i in members]  # type: ignore[arg-type]
        size = min(max(1, round(val_fraction * len(members))), max_val - held)
        segment = place_segment(frames, size, split.gap, u) if size >= 1 else None
        if segment is None:
            if size >= 1:
                split.short.append(source)
            continue
        split.segments[source] = segment
        for i in members:
            side[i] = _side_in_segment(int(keys[i].frame), segment, split.gap)  # type: ignore[arg-type]
            held += side[i] == VAL
    return held


def _assign_new_units(units: dict[str, list[int]], split: Split, side: list[str], val_fraction: float,
                      max_val: int, held: int, n: int, first: bool) -> None:
    new = sorted((_unit_hash(u), u) for u in units if u not in split.val_units and u not in split.train_units)
    trained = side.count(TRAIN)
    chosen_any = held > 0
    for u, unit in new:
        size = len(units[unit])
        if u < val_fraction and held + size <= max_val and trained - size >= 1:
            _hold_out(units[unit], unit, split, side)
            held, trained, chosen_any = held + size, trained - size, True
    if first and not chosen_any and new:
        unit = new[0][1]
        size = len(units[unit])
        if size <= max(1.0, 2 * val_fraction * n) and size <= max_val and trained - size >= 1:
            _hold_out(units[unit], unit, split, side)


def _hold_out(members: list[int], unit: str, split: Split, side: list[str]) -> None:
    split.val_units.add(unit)
    for i in members:
        side[i] = VAL


def _split_by_blocks(keys: Sequence[FaceKey], previous: Split) -> tuple[list[int], list[int], Split]:
    """A split saved before segments: its held-out blocks stay held out; every other face trains."""
    block = int(previous.block)  # type: ignore[arg-type]
    blocks = [block_of(k, block) for k in keys]
    val_idx = [i for i, b in enumerate(blocks) if b in previous.val_units]
    held = set(val_idx)
    train_idx = [i for i in range(len(keys)) if i not in held]
    split = Split(0, val_units=set(previous.val_units), train_units=set(previous.train_units) | {
        b for b in blocks if b not in previous.val_units}, val_files=[keys[i].name for i in val_idx],
        train_count=len(train_idx), block=block)
    return train_idx, val_idx, split


def nearest_trained(keys: Sequence[FaceKey], train_idx: Sequence[int], val_idx: Sequence[int]) -> int | None:
    """The fewest source frames between a held-out video face and a trained face of its clip (None
    when no held-out face has a trained face in its clip: photos, or nothing held out)."""
    trained: dict[str, list[int]] = {}
    for i in train_idx:
        if keys[i].frame is not None and keys[i].source:
            trained.setdefault(keys[i].source, []).append(int(keys[i].frame))
    for frames in trained.values():
        frames.sort()
    best: int | None = None
    for i in val_idx:
        frames = trained.get(keys[i].source, [])
        if keys[i].frame is None or not frames:
            continue
        f = int(keys[i].frame)
        at = bisect.bisect_left(frames, f)
        near = min(abs(frames[j] - f) for j in (at - 1, at) if 0 <= j < len(frames))
        best = near if best is None else min(best, near)
    return best
