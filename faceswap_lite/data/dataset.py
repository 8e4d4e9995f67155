"""Training data: face sets decoded once, split by blocks of frames, sampled reproducibly, batched.

Pieces, in the order the trainer uses them:

* :class:`FaceStore` reads a face-set folder with :mod:`faceswap_lite.faceset`, resizes every face to
  the model resolution (``cv2.INTER_AREA``; landmarks and the valid polygon scaled alike) and keeps
  them in one uint8 N×R×R×3 tensor (``cache=True``). Bad files are skipped, counted by reason in
  :attr:`FaceStore.skipped` and named in one warning; a set with no usable face raises
  :class:`~faceswap_lite.faceset.FaceSetError`. The cache is built in the main process before the
  DataLoader starts its workers: with ``fork`` they share it copy-on-write (one contiguous tensor,
  so reference counting never touches its pages); with ``spawn`` torch sends it through shared memory.
* :func:`split_faces` holds out whole blocks of consecutive frames of one source for validation
  (hashing the block, not the file), so a held-out frame's neighbours are held out with it; a saved
  :class:`Split` keeps every known file on its side when files are added or deleted.
* :class:`FaceDataset` turns one face into a sample dict (see :data:`SAMPLE_KEYS`): augmented target,
  warped input, and the face/eye/mouth landmark masks. Its randomness comes only from
  (seed, stream, epoch, index), so a sample is the same whatever the worker count.
* :class:`FaceSampler` yields ``(epoch, index)`` pairs: a seeded permutation per epoch, sharded by
  rank under ``torch.distributed``, endless by default (no per-epoch worker restarts), resumable by
  skipping the samples already drawn.
* :func:`make_loader` wires them into a ``torch.utils.data.DataLoader``; :func:`load_face_set` builds
  a side's train and validation datasets from the config sections.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import AugmentConfig, DataConfig, MaskConfig
from ..faceset import (  # noqa: F401 - REASONS and the reasons are this module's API too
    BAD_METADATA,
    CORRUPT,
    EMPTY,
    NO_METADATA,
    NOT_PNG,
    REASONS,
    WRONG_SIZE,
    FaceSetError,
    list_faces,
    read_face,
    read_meta,
)
from .augment import Augmenter, sample_rng
from .masks import RegionHulls, landmark_masks

log = logging.getLogger(__name__)

SAMPLE_KEYS = ("input", "target", "face", "eyes", "mouth")

_SHOW = 3  # file names shown per reason in the warning


def _resize(rgb: np.ndarray, resolution: int) -> np.ndarray:
    if rgb.shape[0] == resolution and rgb.shape[1] == resolution:
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if rgb.shape[0] > resolution else cv2.INTER_CUBIC
    return cv2.resize(rgb, (resolution, resolution), interpolation=interp)


def _scale_points(points: np.ndarray, scale: float) -> np.ndarray:
    """Pixel coordinates (pixel centres at integers) after resizing the crop by ``scale``."""
    return ((np.asarray(points, dtype=np.float32) + 0.5) * scale - 0.5).astype(np.float32)


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


class FaceStore:
    """A face set decoded and resized to ``resolution``: the images, landmarks and valid areas.

    Attributes:
        folder: the face-set folder.
        resolution: side R of the stored faces in pixels.
        paths: the usable face files (sorted by name), N of them.
        landmarks: float32 N×68×2, (x, y) in R×R pixels.
        valid_polygons: per face, float32 4×2 source-image border in R×R pixels, or None.
        hulls: per face, the :class:`~faceswap_lite.data.masks.RegionHulls` of its mask regions.
        keys: per face, its :class:`FaceKey` (name, source, frame) for the held-out split.
        geometry: the crop geometry the set was extracted with (``size``, ``padding``,
            ``centering``; the most common one when files differ).
        images: uint8 tensor N×R×R×3 (RGB) when ``cache``, else None (decoded on every access).
        skipped: ``{reason: [path, ...]}`` for the files that could not be used (see :data:`REASONS`).
        total: number of PNG files found (usable + skipped).
    """

    def __init__(self, folder: str | Path, resolution: int, cache: bool = True) -> None:
        self.folder = Path(folder)
        self.resolution = int(resolution)
        self.cache = bool(cache)
        self.skipped: dict[str, list[Path]] = {}
        files = list_faces(self.folder)
        self.total = len(files)
        if not files:
            raise FaceSetError(f"face set {str(self.folder)!r} holds no face PNGs; extract faces into it "
                               "with 'faceswap-lite extract'")
        start = last_log = time.perf_counter()
        paths: list[Path] = []
        landmarks: list[np.ndarray] = []
        polygons: list[np.ndarray | None] = []
        hulls: list[RegionHulls] = []
        keys: list[FaceKey] = []
        geometries: list[tuple[int, float, float]] = []
        # One buffer for every face (no second copy when stacking); rows of skipped files stay unused.
        buffer = np.empty((len(files), self.resolution, self.resolution, 3), np.uint8) if cache else None
        for k, path in enumerate(files):
            reason = self._read(path, buffer, len(paths))
            if isinstance(reason, str):
                self.skipped.setdefault(reason, []).append(path)
                continue
            lm, poly, region_hulls, meta = reason
            keys.append(FaceKey(path.name, meta.source, meta.frame))
            geometries.append((int(meta.size), float(meta.padding), float(meta.centering)))
            paths.append(path)
            landmarks.append(lm)
            polygons.append(poly)
            hulls.append(region_hulls)
            if time.perf_counter() - last_log > 10.0:
                last_log = time.perf_counter()
                log.info("face set %s: read %d of %d files", self.folder, k + 1, len(files))
        self.paths = paths
        self.landmarks = np.stack(landmarks) if landmarks else np.zeros((0, 68, 2), np.float32)
        self.valid_polygons = polygons
        self.hulls = hulls
        self.keys = keys
        self.geometry = _common_geometry(self.folder, geometries)
        self.images: torch.Tensor | None = None
        if buffer is not None and paths:
            self.images = torch.from_numpy(buffer[: len(paths)])
        if self.skipped:
            log.warning("face set %s: %s", self.folder, self.skipped_summary())
        if not paths:
            raise FaceSetError(f"face set {str(self.folder)!r}: none of its {self.total} PNG files can be "
                               f"used ({self.skipped_summary()})")
        log.info("face set %s: %d faces at %d px%s in %.1f s", self.folder, len(paths), self.resolution,
                 " decoded and cached" if cache else " indexed", time.perf_counter() - start)

    def _read(self, path: Path, buffer: np.ndarray | None,
              row: int) -> str | tuple[np.ndarray, np.ndarray | None, RegionHulls, Any]:
        """Read one file (its pixels into ``buffer[row]`` when caching): the scaled geometry, or why not."""
        try:
            if path.stat().st_size == 0:
                return EMPTY
            if buffer is not None:
                rgb, meta = read_face(path)
            else:
                meta = read_meta(path)
        except FaceSetError as exc:
            log.debug("skipping %s: %s", path, exc)
            return exc.reason or CORRUPT
        except OSError as exc:  # unreadable (permissions, vanished): skip like a corrupt file
            log.debug("skipping %s: %s", path, exc)
            return CORRUPT
        if meta.size <= 0:
            return BAD_METADATA
        scale = self.resolution / float(meta.size)
        lm = _scale_points(meta.landmarks, scale)
        poly = None if meta.valid_polygon is None else _scale_points(meta.valid_polygon, scale)
        try:
            region_hulls = RegionHulls.from_landmarks(lm)
        except ValueError:  # non-finite landmarks
            return BAD_METADATA
        if buffer is not None:
            buffer[row] = _resize(rgb, self.resolution)
        return lm, poly, region_hulls, meta

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def skipped_summary(self) -> str:
        """One line: how many files were skipped, by reason, naming a few of each."""
        parts = []
        for reason in sorted(self.skipped, key=lambda r: -len(self.skipped[r])):
            files = self.skipped[reason]
            names = ", ".join(p.name for p in files[:_SHOW]) + (f", +{len(files) - _SHOW} more"
                                                                 if len(files) > _SHOW else "")
            parts.append(f"{len(files)} {reason} ({names})")
        return f"skipped {self.num_skipped} of {self.total} files: " + "; ".join(parts)

    def image(self, i: int) -> np.ndarray:
        """Face ``i`` as uint8 RGB R×R×3 (a view of the cache, or freshly decoded and resized)."""
        if self.images is not None:
            view = self.images[i].numpy()
            view.flags.writeable = False  # the cache is shared by every sample (and worker)
            return view
        rgb, _ = read_face(self.paths[i])
        return _resize(rgb, self.resolution)

    @property
    def nbytes(self) -> int:
        """Bytes held by the image cache (0 without it)."""
        return 0 if self.images is None else self.images.numel()


def _common_geometry(folder: Path, geometries: list[tuple[int, float, float]]) -> dict[str, Any]:
    """The most common (size, padding, centering) of a face set; a mixed set is named in a warning."""
    if not geometries:
        return {}
    counts: dict[tuple[int, float, float], int] = {}
    for g in geometries:
        counts[g] = counts.get(g, 0) + 1
    best = max(counts, key=lambda g: counts[g])
    if len(counts) > 1:
        log.warning("face set %s mixes %d crop geometries (size, padding, centering); the model's is taken "
                    "as the most common, %s (%d of %d faces)", folder, len(counts), best, counts[best],
                    len(geometries))
    return {"size": best[0], "padding": best[1], "centering": best[2]}


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
        indices: which of the store's faces (default: all), e.g. one side of :func:`split_faces`.
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

    The split holds out whole blocks (``data.val_fraction``, ``data.max_val``, ``data.val_block``;
    :func:`split_faces`), keeping the sides of ``previous`` (a resumed run's saved split); ``val``
    is None when nothing is held out. Raises :class:`~faceswap_lite.faceset.FaceSetError` for a
    missing, empty or unusable face set, or one whose every face is held out.
    """
    store = FaceStore(folder, resolution, cache=data.cache)
    train_idx, val_idx, split = split_faces(store.keys, data.val_fraction, data.max_val, data.val_block, previous)
    if not train_idx:
        raise FaceSetError(f"face set {str(store.folder)!r}: every face left is held out for validation by the "
                           "run's split.json; add faces or start a new run folder")
    stream = side_stream(side)
    train = FaceDataset(store, train_idx, augment=augment, mask=mask, seed=seed, stream=stream)
    val = FaceDataset(store, val_idx, augment=None, mask=mask, seed=seed, stream=stream) if val_idx else None
    return FaceSets(store, train, val, split)


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
