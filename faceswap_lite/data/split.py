"""The held-out split: whole blocks of consecutive frames of one source are kept for validation.

The interface is small on purpose (the split rule may change without touching its users):

* :class:`FaceKey` is all the split knows of a face file: its name, source and frame.
* :func:`split_faces` takes the keys (in face-set order), the config's ``val_fraction``, ``max_val``
  and block size, and the :class:`Split` saved at a run's first start, and returns
  ``(train indices, validation indices, the split to save)``.
* :class:`Split` is what the run folder's ``split.json`` holds per side (:meth:`Split.to_json`,
  :meth:`Split.from_json`); reading and writing the file itself is
  :class:`~faceswap_lite.runfolder.RunFolder`'s job.

The split hashes the block, not the file, so a held-out frame's neighbours are held out with it,
and a saved :class:`Split` keeps every known file on its side when files are added or deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..faceset import FaceSetError


@dataclass(frozen=True)
class FaceKey:
    """What the held-out split needs to know of one face file: its name, source and frame."""

    name: str
    source: str
    frame: int | None


def _unit_hash(text: str) -> float:
    """SHA-1 of ``text`` mapped to [0, 1): a rank that never changes with the rest of the face set."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big") / 2.0**64


def block_of(key: FaceKey, block: int) -> str:
    """The split block of a face: a photo is its own block; a video is cut into ``block`` frames.

    Faces without a source (hand-made sets) are each their own block, keyed by file name.
    """
    if not key.source:
        return f"file:{key.name}"
    if key.frame is None:
        return f"{key.source}"
    return f"{key.source}#{int(key.frame) // block}"


@dataclass
class Split:
    """A side's held-out split: which blocks are validation and which are training.

    ``val`` and ``train`` are sets of block ids (:func:`block_of`); ``val_files`` the held-out file
    names. Saved in the run folder's ``split.json`` (:meth:`to_json`), so a resumed run keeps it.
    """

    val: set[str]
    train: set[str]
    val_files: list[str]
    train_count: int
    block: int

    def to_json(self) -> dict[str, Any]:
        return {"val": sorted(self.val_files), "train_count": self.train_count, "block": self.block,
                "val_blocks": sorted(self.val), "train_blocks": sorted(self.train)}

    @classmethod
    def from_json(cls, d: Any, where: str) -> Split:
        try:
            return cls(set(map(str, d["val_blocks"])), set(map(str, d["train_blocks"])),
                       [str(n) for n in d["val"]], int(d["train_count"]), int(d["block"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise FaceSetError(f"{where} is damaged ({type(exc).__name__}: {exc}); delete it to split the "
                               "faces again (faces may then move between training and validation)") from None


def split_faces(keys: Sequence[FaceKey], val_fraction: float, max_val: int, block: int = 32,
                previous: Split | None = None) -> tuple[list[int], list[int], Split]:
    """Hold out whole blocks of consecutive frames (:func:`block_of`) for validation.

    A block is held out when ``u(block) < val_fraction`` (``u``: SHA-1 of the block id mapped to
    [0, 1)), lowest ``u`` first while the held-out faces stay within ``max_val``; at least one face
    stays for training. When no block falls under ``val_fraction`` (a small set), the lowest-ranked
    block is held out if it holds at most ``2 × val_fraction`` of the faces, so small sets still
    get a validation figure.

    ``previous`` (the split saved at the first start): files of its blocks keep their side, whatever
    was added or deleted since; a new block is assigned by the rule above against the room left
    under ``max_val``; deleted files drop out. Nothing moves across, and old blocks are never
    re-ranked (``previous.block`` wins over ``block``, since block ids depend on it). Returns
    (train indices, validation indices, the split to save), indices in the order of ``keys``.
    """
    n = len(keys)
    block = previous.block if previous else int(block)
    blocks = [block_of(k, block) for k in keys]
    members: dict[str, list[int]] = {}
    for i, b in enumerate(blocks):
        members.setdefault(b, []).append(i)
    val = set(previous.val) if previous else set()
    train = set(previous.train) if previous else set()
    if val_fraction > 0 and max_val > 0 and n >= 2:
        held = sum(len(members.get(b, ())) for b in val)
        new = sorted((_unit_hash(b), b) for b in members if b not in val and b not in train)
        for u, b in new:
            size = len(members[b])
            if u < val_fraction and held + size <= max_val and held + size < n:
                val.add(b)
                held += size
        if previous is None and held == 0 and new:
            size = len(members[new[0][1]])
            if size <= max(1.0, 2 * val_fraction * n) and size <= max_val and size < n:
                val.add(new[0][1])
    train |= {b for b in members if b not in val}
    val_idx = [i for i, b in enumerate(blocks) if b in val]
    chosen = set(val_idx)
    train_idx = [i for i in range(n) if i not in chosen]
    split = Split(val, train, [keys[i].name for i in val_idx], len(train_idx), block)
    return train_idx, val_idx, split
