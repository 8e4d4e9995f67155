"""One side's data as the training loop sees it: an endless batch stream, preview and validation faces.

The held-out split is the run's (:class:`~faceswap_lite.runfolder.RunFolder`: written on the first
start, read back on resume): ``previous`` keeps a resumed run validating on the faces it validated
on before and training on none of them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import Config
from ..data.dataset import FaceDataset, make_loader
from ..data.sides import FaceSets, load_face_set
from ..data.split import Split, nearest_trained
from ..runfolder import SPLIT

log = logging.getLogger(__name__)


@dataclass
class SideData:
    sets: FaceSets
    cfg: Config
    rank: int = 0
    world: int = 1
    pin: bool = False
    _val: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def batches(self, start_step: int, augment_on: str = "workers") -> Iterator[dict[str, torch.Tensor]]:
        """Training batches from step ``start_step`` on: the stream a run started at 0 would have reached.

        ``augment_on = "device"``: the workers hand over the raw cached faces, mask planes and drawn
        parameters, and the trainer augments the batch on its device (data/device_augment.py).
        """
        from ..data.device_augment import RawFaceDataset

        d = self.cfg.data
        ds = self.sets.train if augment_on == "workers" else RawFaceDataset.of(self.sets.train)
        loader = make_loader(ds, d.batch_size, workers=d.workers, seed=self.cfg.train.seed,
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

    def val_batch(self) -> dict[str, torch.Tensor] | None:
        """The held-out faces, un-augmented: ``target``, the training masks (``face``, ``eyes``,
        ``mouth``) and ``region``, the landmark face region the metrics are measured in (the face
        mask itself unless ``mask.face`` is off). None when nothing is held out."""
        if self.sets.val is None:
            return None
        if self._val is None:
            v = self.sets.val
            samples = [v.sample(i) for i in range(len(v))]
            self._val = {k: torch.stack([s[k] for s in samples]) for k in ("target", "face", "eyes", "mouth")}
            region = self._val["face"]
            if not self.cfg.mask.face:
                ds = FaceDataset(v.store, v.indices, augment=None, mask=dataclasses.replace(self.cfg.mask, face=True))
                region = torch.stack([ds.sample(i)["face"] for i in range(len(ds))])
            self._val["region"] = region
        return self._val

    def skipped_counts(self) -> dict[str, int]:
        return {reason: len(paths) for reason, paths in self.sets.skipped.items() if paths}


def make_side_data(folder: Path, cfg: Config, resolution: int, *, side: str, seed: int, rank: int = 0,
                   world: int = 1, device: torch.device | None = None, previous: Split | None = None) -> SideData:
    sets = load_face_set(folder, resolution, cfg.data, cfg.augment, cfg.mask, seed=seed, side=side,
                         previous=previous)
    if rank == 0:
        log_split(side, sets, previous is not None)
    return SideData(sets, cfg, rank, world, pin=device is not None and device.type == "cuda")


def log_split(side: str, sets: FaceSets, kept: bool) -> None:
    """One line per side: trained, held out, in the guard gaps, and how far the held-out faces are
    from the nearest trained frame; one more for the clips too short to hold a segment out."""
    split = sets.split
    n_val = 0 if sets.val is None else len(sets.val)
    near = nearest_trained(sets.store.keys, sets.train.indices, [] if sets.val is None else sets.val.indices)
    far = "" if near is None else f"; the nearest trained frame is {near} frames from a held-out one"
    gap = "" if split.block is not None else f", {len(split.gap_files)} in the {split.gap}-frame guard gaps"
    log.info("side %s: %d faces trained, %d held out for validation%s%s%s", side, len(sets.train), n_val, gap,
             far, f", split kept from {SPLIT}" if kept else "")
    if split.short:
        log.info("side %s: %s too short to hold out a segment with its %d-frame gaps (no held-out faces from "
                 "them)", side, ", ".join(Path(s).name for s in split.short), split.gap)
