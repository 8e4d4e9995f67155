"""One side's data as the training loop sees it: an endless batch stream, preview and validation faces."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import Config
from ..data.dataset import FaceDataset, FaceSets, load_face_set, make_loader


@dataclass
class SideData:
    sets: FaceSets
    cfg: Config
    rank: int = 0
    world: int = 1
    pin: bool = False
    _val: torch.Tensor | None = field(default=None, repr=False)

    def batches(self, start_step: int) -> Iterator[dict[str, torch.Tensor]]:
        """Training batches from step ``start_step`` on: the stream a run started at 0 would have reached."""
        d = self.cfg.data
        loader = make_loader(self.sets.train, d.batch_size, workers=d.workers, seed=self.cfg.train.seed,
                             train=True, skip=start_step * d.batch_size, rank=self.rank,
                             world_size=self.world, pin_memory=self.pin)
        return iter(loader)

    def _plain(self, count: int) -> torch.Tensor:
        """Up to ``count`` un-augmented faces: validation faces first, then training faces."""
        idx = []
        if self.sets.val is not None:
            idx += [int(i) for i in self.sets.val.indices[:count]]
        idx += [int(i) for i in self.sets.train.indices[: max(0, count - len(idx))]]
        ds = FaceDataset(self.sets.store, idx, augment=None, mask=self.cfg.mask)
        return torch.stack([ds.sample(i)["target"] for i in range(len(ds))])

    def preview_faces(self, count: int) -> torch.Tensor:
        return self._plain(count)

    def val_faces(self) -> torch.Tensor | None:
        if self.sets.val is None:
            return None
        if self._val is None:
            v = self.sets.val
            self._val = torch.stack([v.sample(i)["target"] for i in range(len(v))])
        return self._val

    def skipped_counts(self) -> dict[str, int]:
        return {reason: len(paths) for reason, paths in self.sets.skipped.items() if paths}


def make_side_data(folder: Path, cfg: Config, resolution: int, *, side: str, seed: int, rank: int = 0,
                   world: int = 1, device: torch.device | None = None) -> SideData:
    sets = load_face_set(folder, resolution, cfg.data, cfg.augment, cfg.mask, seed=seed, side=side)
    return SideData(sets, cfg, rank, world, pin=device is not None and device.type == "cuda")
