"""The face set: the contract between extract and train.

A face set is a folder of PNG files, one aligned face each. Each PNG carries its metadata as JSON in
an ``iTXt`` chunk named ``faceswap_lite``, so a face set is self-contained: users curate it by
deleting files, and no central index is needed to train.

Metadata (format version 2; version 1 files, without ``descriptor``, are read as before):
    version        int, FORMAT_VERSION
    source         str, the source file (as given to extract)
    frame          int or null, the frame index for a video
    face_index     int, the face's index in its image or frame (by detector order)
    box            [x0, y0, x1, y1], the detection box in source pixels
    score          float, the detector's score
    landmarks      68×[x, y], the landmarks in crop pixels
    matrix         2×3 affine from source pixels to crop pixels
    size           int, the crop's side in pixels
    padding        float, the crop's margin around the inner landmarks (see extract.align)
    centering      float, how far the crop is moved up to show the forehead (see extract.align;
                   optional, 0.0 when absent)
    source_size    [width, height] of the source image
    valid_polygon  4×[x, y], the source image's border in crop pixels (outside it the crop holds
                   fill colour, not image: training masks it out)
    descriptor     128 floats, the face's identity descriptor (see faceswap_lite.identity), or
                   null / absent (version 1 files: computed on the fly where needed)

This module is the one place that reads and writes these files. Images are RGB uint8 H×W×3 here
(the format of the file); the rest of the code converts them to tensors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from .errors import FaceswapLiteError
from .fsutil import write_atomic

FORMAT_VERSION = 2  # 2: the identity descriptor
DESCRIPTOR_SIZE = 128
CHUNK_KEY = "faceswap_lite"


# Why a face file cannot be used: FaceSetError.reason (the dataset counts skipped files by it).
EMPTY = "empty file"
NOT_PNG = "not a PNG image"
CORRUPT = "corrupt or truncated"
NO_METADATA = "no faceswap-lite metadata"
BAD_METADATA = "bad metadata"
WRONG_SIZE = "size differs from metadata"
REASONS = (EMPTY, NOT_PNG, CORRUPT, NO_METADATA, BAD_METADATA, WRONG_SIZE)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FaceSetError(FaceswapLiteError):
    """A face file that cannot be used (corrupt, not a PNG, no or bad metadata), or a face set folder
    that cannot be used. ``reason``: one of :data:`REASONS` for a file, None for a folder."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class FaceMeta:
    source: str
    frame: int | None
    face_index: int
    box: list[float]
    score: float
    landmarks: np.ndarray  # (68, 2) float, crop pixels
    matrix: np.ndarray  # (2, 3) float, source -> crop
    size: int
    padding: float = 0.0
    source_size: list[int] = field(default_factory=lambda: [0, 0])
    valid_polygon: np.ndarray | None = None  # (4, 2) float, crop pixels
    version: int = FORMAT_VERSION
    centering: float = 0.0
    descriptor: np.ndarray | None = None  # (128,) float32, dlib's face descriptor

    def to_json(self) -> str:
        d: dict[str, Any] = asdict(self)
        d["landmarks"] = np.asarray(self.landmarks, dtype=float).round(3).tolist()
        d["matrix"] = np.asarray(self.matrix, dtype=float).tolist()
        d["valid_polygon"] = (None if self.valid_polygon is None
                              else np.asarray(self.valid_polygon, dtype=float).round(3).tolist())
        d["box"] = [float(v) for v in self.box]
        d["score"] = float(self.score)
        d["descriptor"] = (None if self.descriptor is None  # 5 decimals: distance error < 1e-4
                           else np.asarray(self.descriptor, dtype=float).round(5).tolist())
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, where: str = "face") -> FaceMeta:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FaceSetError(f"{where}: metadata is not valid JSON ({exc})", BAD_METADATA) from None
        if not isinstance(d, dict):
            raise FaceSetError(f"{where}: metadata is not a JSON object", BAD_METADATA)
        version = d.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise FaceSetError(
                f"{where}: face metadata version {version!r} is not supported (this build reads up to "
                f"{FORMAT_VERSION}); re-extract the faces with this version or upgrade faceswap-lite", BAD_METADATA
            )
        try:
            lm = np.asarray(d["landmarks"], dtype=np.float32)
            mat = np.asarray(d["matrix"], dtype=np.float64)
            poly = d.get("valid_polygon")
            desc = d.get("descriptor")
            meta = cls(
                source=str(d["source"]), frame=d.get("frame"), face_index=int(d["face_index"]),
                box=[float(v) for v in d["box"]], score=float(d["score"]), landmarks=lm, matrix=mat,
                size=int(d["size"]), padding=float(d.get("padding", 0.0)),
                centering=float(d.get("centering", 0.0)),
                source_size=[int(v) for v in d.get("source_size", [0, 0])],
                valid_polygon=None if poly is None else np.asarray(poly, dtype=np.float32),
                version=version,
                descriptor=None if desc is None else np.asarray(desc, dtype=np.float32),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FaceSetError(f"{where}: metadata is missing or has a bad field ({type(exc).__name__}: {exc})",
                               BAD_METADATA) from None
        if meta.landmarks.shape != (68, 2) or meta.matrix.shape != (2, 3):
            raise FaceSetError(f"{where}: metadata needs 68×2 landmarks and a 2×3 matrix, got "
                               f"{meta.landmarks.shape} and {meta.matrix.shape}", BAD_METADATA)
        if meta.descriptor is not None and (meta.descriptor.shape != (DESCRIPTOR_SIZE,)
                                            or not np.all(np.isfinite(meta.descriptor))):
            raise FaceSetError(f"{where}: metadata descriptor must be {DESCRIPTOR_SIZE} finite numbers, "
                               f"got shape {meta.descriptor.shape}", BAD_METADATA)
        return meta


def write_face(path: str | Path, rgb: np.ndarray, meta: FaceMeta, compress_level: int = 3,
               compress_type: int | None = None) -> Path:
    """Write one aligned face PNG with its metadata, atomically (see :func:`write_atomic`).

    ``rgb``: uint8 H×W×3. A crash or Ctrl-C leaves either the old file, or none, never half a PNG.
    ``compress_level`` and ``compress_type`` (a zlib strategy, e.g. ``zlib.Z_RLE``) go to Pillow's
    PNG encoder; any PNG reader reads the result.
    """
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"write_face needs uint8 H×W×3 RGB, got {rgb.dtype} {rgb.shape}")
    info = PngImagePlugin.PngInfo()
    info.add_itxt(CHUNK_KEY, meta.to_json(), zip=True)
    image = Image.fromarray(rgb, "RGB")
    options: dict[str, Any] = {"compress_level": compress_level}
    if compress_type is not None:
        options["compress_type"] = compress_type
    return write_atomic(path, lambda fh: image.save(fh, format="PNG", pnginfo=info, **options))


def _unreadable(path: Path) -> str:
    """The reason for a file PIL cannot open: empty, not a PNG at all, or a PNG with broken bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_PNG_SIGNATURE))
    except OSError:
        return CORRUPT
    return EMPTY if not head else NOT_PNG if head != _PNG_SIGNATURE else CORRUPT


def _open(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
    except FileNotFoundError:
        raise FaceSetError(f"{path}: no such file", CORRUPT) from None
    except Exception as exc:
        raise FaceSetError(f"{path}: not a readable image ({type(exc).__name__}: {exc})", _unreadable(path)) from None
    if im.format != "PNG":
        raise FaceSetError(f"{path}: not a PNG face (format {im.format}); faces come from faceswap-lite extract",
                           NOT_PNG)
    return im


def read_meta(path: str | Path) -> FaceMeta:
    """Read only a face's metadata (no pixel decoding)."""
    path = Path(path)
    with _open(path) as im:
        text = im.info.get(CHUNK_KEY)
        if text is None:
            try:
                im.load()  # the chunk may follow the image data
            except Exception as exc:
                raise FaceSetError(f"{path}: corrupt PNG ({type(exc).__name__}: {exc})", CORRUPT) from None
            text = im.info.get(CHUNK_KEY)
    if text is None:
        raise FaceSetError(f"{path}: PNG without faceswap-lite metadata; extract faces with "
                           "'faceswap-lite extract' (plain crops cannot be trained on: no landmarks)", NO_METADATA)
    return FaceMeta.from_json(str(text), where=str(path))


def read_face(path: str | Path) -> tuple[np.ndarray, FaceMeta]:
    """Read one face: (uint8 H×W×3 RGB, metadata). Raises :class:`FaceSetError` for a bad file."""
    path = Path(path)
    meta = read_meta(path)
    try:
        with _open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except FaceSetError:
        raise
    except Exception as exc:
        raise FaceSetError(f"{path}: corrupt or truncated PNG ({type(exc).__name__}: {exc})", CORRUPT) from None
    if rgb.shape[0] != meta.size or rgb.shape[1] != meta.size:
        raise FaceSetError(f"{path}: image is {rgb.shape[1]}×{rgb.shape[0]} but its metadata says "
                           f"{meta.size}×{meta.size}", WRONG_SIZE)
    return rgb, meta


def list_faces(folder: str | Path) -> list[Path]:
    """The face files of a face set, sorted by name (hidden and temporary files are skipped)."""
    folder = Path(folder)
    if not folder.exists():
        raise FaceSetError(f"face set {str(folder)!r} does not exist; create one with 'faceswap-lite extract'")
    if not folder.is_dir():
        raise FaceSetError(f"face set {str(folder)!r} is not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
