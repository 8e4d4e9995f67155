"""One side's training data: its face set decoded, split for validation, and wrapped as datasets.

:func:`load_face_set` builds a side's train and validation :class:`~faceswap_lite.data.dataset.FaceDataset`
from the config sections: a :class:`~faceswap_lite.data.faces.FaceStore`, split by
:func:`~faceswap_lite.data.split.split_faces`, with the side's own random stream (:func:`side_stream`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from ..config import AugmentConfig, DataConfig, MaskConfig
from ..faceset import FaceSetError
from .dataset import FaceDataset
from .faces import FaceStore
from .split import Split, split_faces


@dataclass
class FaceSets:
    """One side's data: the decoded store, its train and validation datasets, and the split."""

    store: FaceStore
    train: FaceDataset
    val: FaceDataset | None
    split: Split | None = None

    @property
    def skipped(self) -> dict[str, list[Path]]:
        return self.store.skipped


def side_stream(side: str) -> int:
    """A stable stream number for a side name (so sides 'a' and 'b' augment independently)."""
    return zlib.crc32(side.encode())


def load_face_set(folder: str | Path, resolution: int, data: DataConfig, augment: AugmentConfig,
                  mask: MaskConfig, *, seed: int = 0, side: str = "a", previous: Split | None = None) -> FaceSets:
    """Decode (``data.cache``) one side's face set at ``resolution`` and split it for validation.

    The split holds out a guarded segment of each clip and whole photos (``data.val_fraction``,
    ``data.max_val``, ``data.val_gap``; :func:`split_faces`), keeping the sides of ``previous`` (a resumed run's saved split); ``val``
    is None when nothing is held out. Raises :class:`~faceswap_lite.faceset.FaceSetError` for a
    missing, empty or unusable face set, or one whose every face is held out.
    """
    store = FaceStore(folder, resolution, cache=data.cache)
    train_idx, val_idx, split = split_faces(store.keys, data.val_fraction, data.max_val, data.val_gap, previous)
    if not train_idx:
        raise FaceSetError(f"face set {str(store.folder)!r}: every face left is held out for validation by the "
                           "run's split.json; add faces or start a new run folder")
    stream = side_stream(side)
    train = FaceDataset(store, train_idx, augment=augment, mask=mask, seed=seed, stream=stream)
    val = FaceDataset(store, val_idx, augment=None, mask=mask, seed=seed, stream=stream) if val_idx else None
    return FaceSets(store, train, val, split)
