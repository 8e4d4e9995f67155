"""Training samples, their order and their batches: a torch Dataset, a sampler and the DataLoader.

Pieces, in the order the trainer uses them (the faces come from a
:class:`~faceswap_lite.data.faces.FaceStore`, split by :mod:`faceswap_lite.data.split`, one side
put together by :func:`~faceswap_lite.data.sides.load_face_set`):

* :class:`FaceDataset` turns one face into a sample dict (see :data:`SAMPLE_KEYS`): augmented target,
  warped input, and the face/eye/mouth landmark masks. Its randomness comes only from
  (seed, stream, epoch, index), so a sample is the same whatever the worker count.
* :class:`FaceSampler` yields ``(epoch, index)`` pairs: a seeded permutation per epoch, sharded by
  rank under ``torch.distributed``, endless by default (no per-epoch worker restarts), resumable by
  skipping the samples already drawn.
* :func:`make_loader` wires them into a ``torch.utils.data.DataLoader``; :func:`loader_throughput`
  measures it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import AugmentConfig, MaskConfig
from ..faceset import FaceSetError
from .augment import Augmenter, sample_rng
from .faces import FaceStore
from .masks import landmark_masks

log = logging.getLogger(__name__)

SAMPLE_KEYS = ("input", "target", "face", "eyes", "mouth")


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 -> float32 3×H×W in [0, 1].

    In NumPy on purpose: a torch op on a 3×128×128 tensor goes multi-threaded in the main process
    (workers=0), which costs 10× more than the work itself when the cores are busy.
    """
    chw = np.empty((3, rgb.shape[0], rgb.shape[1]), dtype=np.float32)
    np.multiply(rgb.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=chw)
    return torch.from_numpy(chw)


class FaceDataset(Dataset):
    """Samples from some faces of a :class:`FaceStore`.

    Args:
        store: the decoded face set.
        indices: which of the store's faces (default: all), e.g. one side of
            :func:`~faceswap_lite.data.split.split_faces`.
        augment: augmentation settings for training samples; None for validation samples (no
            augmentation, no warp: ``input`` equals ``target``).
        mask: mask settings (``blur`` feathering, ``face`` restriction).
        seed, stream: the randomness of sample ``i`` in epoch ``e`` is a pure function of
            (seed, stream, e, i); use a different stream per side.

    ``dataset[i]`` (epoch :attr:`epoch`, see :meth:`set_epoch`) or ``dataset[(epoch, i)]`` (what
    :class:`FaceSampler` yields) returns a dict of float32 tensors, R = store resolution:
    ``input`` and ``target`` 3×R×R RGB in [0, 1], ``face``, ``eyes``, ``mouth`` 1×R×R in [0, 1].
    """

    def __init__(self, store: FaceStore, indices: Sequence[int] | None = None, *,
                 augment: AugmentConfig | None = None, mask: MaskConfig | None = None,
                 seed: int = 0, stream: int = 0) -> None:
        self.store = store
        self.indices = np.arange(len(store)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.augment = augment
        self.mask = mask if mask is not None else MaskConfig()
        self.seed = int(seed)
        self.stream = int(stream)
        self.epoch = 0
        self._augmenter = Augmenter(augment) if augment is not None else None
        self._warned: set[int] = set()

    @property
    def train(self) -> bool:
        return self._augmenter is not None

    @property
    def resolution(self) -> int:
        return self.store.resolution

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """The epoch used by integer indexing (the sampler passes the epoch with each index)."""
        self.epoch = int(epoch)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        if isinstance(key, tuple):
            epoch, index = key
        else:
            epoch, index = self.epoch, key
        return self.sample(int(index), int(epoch))

    def path(self, index: int) -> Path:
        return self.store.paths[int(self.indices[index])]

    def _image(self, index: int) -> tuple[int, np.ndarray]:
        """(store index, image); without a cache, a file gone bad is replaced by the next face."""
        n = len(self.indices)
        for k in range(n):
            pos = (index + k) % n
            i = int(self.indices[pos])
            try:
                return i, self.store.image(i)
            except (FaceSetError, OSError) as exc:
                if i not in self._warned:
                    self._warned.add(i)
                    log.warning("cannot read %s, using another face in its place: %s", self.store.paths[i], exc)
        raise FaceSetError(f"face set {str(self.store.folder)!r}: no face can be read any more")

    def sample(self, index: int, epoch: int = 0) -> dict[str, torch.Tensor]:
        """Sample ``index`` (0 <= index < len) of ``epoch``; see the class docstring for the dict."""
        if not 0 <= index < len(self.indices):
            raise IndexError(f"index {index} out of range for {len(self.indices)} faces")
        i, image = self._image(index)
        size = self.store.resolution
        matrix = None
        if self._augmenter is not None:
            rng = sample_rng(self.seed, epoch, index, self.stream)
            target, model_input, matrix = self._augmenter(image, rng)
        else:
            target = model_input = image
        masks = landmark_masks(self.store.hulls[i], size, self.store.valid_polygons[i],
                               blur=self.mask.blur, face=self.mask.face, matrix=matrix)
        target_t = _to_tensor(target)
        input_t = target_t if model_input is target else _to_tensor(model_input)
        m = torch.from_numpy(masks)
        return {"input": input_t, "target": target_t, "face": m[0:1], "eyes": m[1:2], "mouth": m[2:3]}


def _dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class FaceSampler(Sampler):
    """Seeded, sharded sampler yielding ``(epoch, index)`` pairs.

    Each epoch is a permutation of ``range(n)`` drawn from (seed, stream, epoch) (or the identity when not
    shuffling), padded by wrapping to a multiple of ``world_size`` and dealt out as
    ``perm[rank::world_size]``, like ``DistributedSampler``: every rank reads its own shard of
    ``ceil(n / world_size)`` samples per epoch, and all ranks see the same number.

    ``infinite=True`` goes on from epoch to epoch forever (the DataLoader's workers never restart);
    otherwise one epoch, :attr:`epoch`, set with :meth:`set_epoch`. ``skip`` drops the first samples
    of this rank's stream (e.g. ``step * batch_size`` on resume), continuing exactly where it was.
    """

    def __init__(self, n: int, *, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 epoch: int = 0, infinite: bool = True, skip: int = 0, stream: int = 0) -> None:
        if n < 1:
            raise ValueError("FaceSampler needs at least one face")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad rank {rank} for world size {world_size}")
        self.n = n
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = int(epoch)
        self.infinite = infinite
        self.skip = int(skip)
        self.stream = int(stream)

    @property
    def per_epoch(self) -> int:
        """Samples per epoch on each rank."""
        return math.ceil(self.n / self.world_size)

    def __len__(self) -> int:
        """Samples in one epoch on this rank (an infinite sampler yields epochs of this length)."""
        return self.per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """This rank's indices for ``epoch`` (int64, length :attr:`per_epoch`)."""
        if self.shuffle:
            mask = (1 << 64) - 1
            perm = np.random.default_rng([self.seed & mask, self.stream & mask, epoch]).permutation(self.n)
        else:
            perm = np.arange(self.n)
        total = self.per_epoch * self.world_size
        if total > self.n:
            perm = np.resize(perm, total)  # wraps around, like DistributedSampler's padding
        return perm[self.rank::self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = self.epoch + self.skip // self.per_epoch, self.skip % self.per_epoch
        while True:
            for index in self.epoch_indices(epoch)[offset:].tolist():
                yield epoch, index
            if not self.infinite:
                return
            epoch, offset = epoch + 1, 0


def worker_init(worker_id: int) -> None:
    """DataLoader worker set-up: one thread for OpenCV and torch (workers are the parallelism)."""
    cv2.setNumThreads(0)
    torch.set_num_threads(1)


def collate_in_numpy(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack sample dicts into a batch dict with NumPy (single-threaded); used when workers == 0.

    ``torch.stack`` in the main process runs on torch's intra-op threads, which the training step
    is using too: on busy cores it was 50× slower than this. Workers (one torch thread each) keep
    the default collate, which writes straight into shared memory.
    """
    return {k: torch.from_numpy(np.stack([s[k].numpy() for s in samples])) for k in samples[0]}


def make_loader(dataset: FaceDataset, batch_size: int, *, workers: int = 0, seed: int = 0, train: bool = True,
                epoch: int = 0, skip: int = 0, rank: int | None = None, world_size: int | None = None,
                pin_memory: bool | None = None, prefetch_factor: int | None = None) -> DataLoader:
    """A DataLoader of batches of :data:`SAMPLE_KEYS` (N×3×R×R and N×1×R×R float32 tensors).

    ``train=True``: endless, shuffled per epoch by ``seed`` and the dataset's stream (so two sides
    get different orders), sharded over ranks (default: the ``torch.distributed`` rank and world
    size when it is initialised), starting at ``epoch`` after skipping ``skip`` samples of this
    rank's stream; iterate it with ``next(it)`` for as many steps as needed. ``train=False``: one pass in order over the whole dataset (no sharding unless ``rank``
    and ``world_size`` are given), the last batch possibly short.

    ``workers`` processes (0 = main process, batches stacked by :func:`collate_in_numpy`) with
    persistent workers; ``pin_memory`` defaults to ``torch.cuda.is_available()``.
    """
    if rank is None or world_size is None:
        r, w = _dist_rank_world() if train else (0, 1)
        rank = r if rank is None else rank
        world_size = w if world_size is None else world_size
    sampler = FaceSampler(len(dataset), seed=seed, shuffle=train, rank=rank, world_size=world_size,
                          epoch=epoch, infinite=train, skip=skip, stream=getattr(dataset, "stream", 0))
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    extra: dict[str, Any] = {}
    if workers == 0:
        extra["collate_fn"] = collate_in_numpy
    else:
        extra.update(persistent_workers=True, worker_init_fn=worker_init)
        if prefetch_factor is not None:
            extra["prefetch_factor"] = prefetch_factor
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=pin_memory, drop_last=False, generator=generator, **extra)


def loader_throughput(dataset: FaceDataset, batch_size: int = 16, workers: int = 0, batches: int = 50,
                      warmup: int = 5, seed: int = 0) -> float:
    """Faces per second delivered by :func:`make_loader` (train mode), after ``warmup`` batches.

    Worker start-up is excluded; ``pin_memory`` is off so the figure is the loader's own.
    """
    loader = make_loader(dataset, batch_size, workers=workers, seed=seed, train=True, pin_memory=False)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    elapsed = time.perf_counter() - start
    del it  # shuts the workers down
    return batches * batch_size / elapsed
