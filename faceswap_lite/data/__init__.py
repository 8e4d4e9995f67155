"""Training data: face sets decoded once, landmark masks, augmentation with the random warp, loaders.

The trainer's entry points::

    sets = load_face_set(folder, model.resolution, cfg.data, cfg.augment, cfg.mask, seed=seed, side="a")
    loader = make_loader(sets.train, cfg.data.batch_size, workers=cfg.data.workers, seed=seed,
                         skip=step * cfg.data.batch_size)
    batch = next(iter(loader))   # {"input", "target": N×3×R×R, "face", "eyes", "mouth": N×1×R×R}
"""

from .augment import Augmenter, colour_transform, random_affine, random_warp, sample_rng, warp_maps
from .dataset import (
    SAMPLE_KEYS,
    FaceDataset,
    FaceSampler,
    collate_in_numpy,
    loader_throughput,
    make_loader,
    worker_init,
)
from .faces import REASONS, FaceStore
from .masks import (
    MASK_NAMES,
    RegionHulls,
    eye_polygons,
    face_polygon,
    landmark_masks,
    mouth_polygon,
    valid_area,
)
from .sides import FaceSets, load_face_set, side_stream
from .split import split_faces

__all__ = [
    "MASK_NAMES", "REASONS", "SAMPLE_KEYS", "Augmenter", "FaceDataset", "FaceSampler", "FaceSets", "FaceStore",
    "RegionHulls", "collate_in_numpy", "colour_transform", "eye_polygons", "face_polygon", "landmark_masks", "load_face_set", "loader_throughput",
    "make_loader", "mouth_polygon", "random_affine", "random_warp", "sample_rng", "side_stream", "split_faces",
    "valid_area", "warp_maps", "worker_init",
]
