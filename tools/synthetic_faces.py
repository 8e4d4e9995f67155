"""Synthetic face sets for the tests and the benchmarks (tools/bench_*.py): plausible 68-point layouts.

The layout is a rough frontal face in the iBUG 68-point order (jaw 0–16, brows 17–26, nose 27–35,
eyes 36–47, lips 48–67), drawn into a textured image: skin inside the face hull, dark eyes, red lips,
so that tests can check that masks and augmentation stay aligned with the pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, PngImagePlugin

from faceswap_lite.data.faces import BAD_METADATA, CORRUPT, EMPTY, NO_METADATA, NOT_PNG, WRONG_SIZE
from faceswap_lite.faceset import CHUNK_KEY, FaceMeta, write_face


def template_landmarks(size: int) -> np.ndarray:
    """A frontal 68-point layout for a size×size crop, float32 68×2 (x, y) pixels."""
    s = float(size)
    cx = 0.5 * s
    pts = np.zeros((68, 2), np.float64)
    t = np.pi - np.arange(17) * np.pi / 16  # jaw: ear (left) -> chin -> ear (right)
    pts[0:17] = np.stack([cx + 0.3 * s * np.cos(t), 0.45 * s + 0.4 * s * np.sin(t)], 1)
    bx = np.linspace(-0.25, -0.05, 5)
    brow = np.stack([cx + bx * s, (0.36 - 0.03 * np.sin(np.linspace(0, np.pi, 5))) * s], 1)
    pts[17:22] = brow
    pts[22:27] = np.stack([2 * cx - brow[::-1, 0], brow[::-1, 1]], 1)
    pts[27:31] = np.stack([np.full(4, cx), np.linspace(0.42, 0.58, 4) * s], 1)
    pts[31:36] = np.stack([cx + np.linspace(-0.06, 0.06, 5) * s, np.full(5, 0.62 * s)], 1)

    def eye(ex: float) -> np.ndarray:
        a = np.array([np.pi, 2 * np.pi / 3, np.pi / 3, 0.0, -np.pi / 3, -2 * np.pi / 3])
        return np.stack([ex + 0.05 * s * np.cos(a), 0.45 * s - 0.02 * s * np.sin(a)], 1)

    pts[36:42] = eye(cx - 0.15 * s)
    pts[42:48] = eye(cx + 0.15 * s)
    a = np.pi - np.arange(12) * 2 * np.pi / 12  # 48 left corner, upper lip to 54, lower back
    pts[48:60] = np.stack([cx + 0.1 * s * np.cos(a), 0.72 * s - 0.04 * s * np.sin(a)], 1)
    a = np.pi - np.arange(8) * 2 * np.pi / 8
    pts[60:68] = np.stack([cx + 0.07 * s * np.cos(a), 0.72 * s - 0.015 * s * np.sin(a)], 1)
    return pts.astype(np.float32)


def jittered_landmarks(rng: np.random.Generator, size: int) -> np.ndarray:
    """The template under a small random similarity transform (±5°, ±5 % zoom, ±3 % shift)."""
    ang = np.deg2rad(rng.uniform(-5, 5))
    zoom = rng.uniform(0.95, 1.05)
    c = (size - 1) / 2.0
    rot = zoom * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    lm = (template_landmarks(size) - c) @ rot.T + c + rng.uniform(-0.03, 0.03, 2) * size
    return lm.astype(np.float32)


def draw_face(rng: np.random.Generator, size: int, landmarks: np.ndarray) -> np.ndarray:
    """uint8 RGB size×size×3: smooth random background, skin face hull, dark eyes, red lips."""
    noise = rng.random((size // 8 + 2, size // 8 + 2, 3)).astype(np.float32)
    img = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC) * 120 + 40
    fine = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), max(1.0, size / 64)) * 40
    img = np.clip(img + fine, 0, 255).astype(np.uint8)
    lm = np.round(landmarks).astype(np.int32)
    skin = (225, 180, 150)
    cv2.fillConvexPoly(img, cv2.convexHull(lm[0:27]), skin)
    for eye in (lm[36:42], lm[42:48]):
        cv2.fillConvexPoly(img, cv2.convexHull(eye), (30, 20, 20))
    cv2.fillConvexPoly(img, cv2.convexHull(lm[48:60]), (200, 40, 50))
    return img


def face_meta(landmarks: np.ndarray, size: int, valid_polygon: np.ndarray | None = None,
              source: str = "synthetic.png") -> FaceMeta:
    return FaceMeta(source=source, frame=None, face_index=0, box=[0.0, 0.0, float(size), float(size)],
                    score=1.0, landmarks=landmarks, matrix=np.eye(2, 3), size=size, padding=0.0,
                    source_size=[size, size], valid_polygon=valid_polygon)


def make_face_set(folder: str | Path, n: int, size: int = 128, seed: int = 0,
                  valid_polygon: np.ndarray | None = None, prefix: str = "face") -> list[Path]:
    """Write ``n`` synthetic faces (size×size) into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        lm = jittered_landmarks(rng, size)
        img = draw_face(rng, size, lm)
        meta = face_meta(lm, size, valid_polygon, source=f"{prefix}_{i:04d}.jpg")  # one photo per face
        paths.append(write_face(folder / f"{prefix}_{i:04d}.png", img, meta, compress_level=1))
    return paths


def write_bad_files(folder: str | Path, size: int = 128) -> dict[str, list[str]]:
    """One file per kind of damage; returns ``{reason: [file name]}`` as the dataset should report."""
    folder = Path(folder)
    rng = np.random.default_rng(123)
    lm = template_landmarks(size)
    good = draw_face(rng, size, lm)
    expected: dict[str, list[str]] = {}

    def add(reason: str, name: str) -> Path:
        expected.setdefault(reason, []).append(name)
        return folder / name

    add(EMPTY, "bad_empty.png").write_bytes(b"")
    add(NOT_PNG, "bad_random_bytes.png").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    add(NOT_PNG, "bad_text.png").write_text("this is not an image\n")
    whole = write_face(folder / "tmp_whole.png", good, face_meta(lm, size)).read_bytes()
    (folder / "tmp_whole.png").unlink()
    add(CORRUPT, "bad_truncated.png").write_bytes(whole[: len(whole) // 2])
    garbled = bytearray(whole)
    idat = garbled.find(b"IDAT")
    garbled[idat + 40: idat + 400] = rng.integers(0, 256, 360, dtype=np.uint8).tobytes()
    add(CORRUPT, "bad_garbled.png").write_bytes(bytes(garbled))
    small = cv2.resize(good, (size // 2, size // 2))
    write_face(add(WRONG_SIZE, "bad_wrong_size.png"), small, face_meta(lm, size))
    Image.fromarray(good).save(add(NO_METADATA, "bad_no_metadata.png"))
    nan = lm.copy()
    nan[30] = np.nan
    write_face(add(BAD_METADATA, "bad_nan_landmarks.png"), good, face_meta(nan, size))
    info = PngImagePlugin.PngInfo()
    info.add_itxt(CHUNK_KEY, "{not json", zip=True)
    Image.fromarray(good).save(add(BAD_METADATA, "bad_metadata_json.png"), pnginfo=info)
    return expected
