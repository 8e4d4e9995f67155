"""The inputs every loss is checked on, made with NumPy alone so they are bit-for-bit reproducible.

Used by the tests and by ``tools/make_loss_references.py`` (which stores the peers' values).
A "real-looking" smooth image (low-frequency waves and soft blobs, like skin and background)
against noisy, blurred and shifted copies, identical pairs, constant images and anti-correlated
pairs; batch 1 and 4; sizes 64, 128, 176, 256 and an odd size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

SIZES = (64, 128, 176, 256, 99)
KINDS = ("noisy", "blurred", "shifted", "identical", "constant", "constant_vs_image", "anticorrelated")


def smooth_image(size: int, seed: int, batch: int = 1, channels: int = 3) -> np.ndarray:
    """A smooth, natural-looking float64 image batch N×C×H×W in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    out = np.empty((batch, channels, size, size))
    for n in range(batch):
        base = np.zeros((size, size))
        for _ in range(6):
            fx, fy = rng.uniform(0.5, 4.0, 2)
            phase = rng.uniform(0, 2 * np.pi)
            base += rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)
        for _ in range(5):
            cx, cy = rng.uniform(0.1, 0.9, 2)
            r = rng.uniform(0.05, 0.25)
            base += rng.uniform(-0.4, 0.4) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))
        for c in range(channels):
            tint = rng.uniform(0.8, 1.2)
            ch = 0.5 + tint * base + rng.uniform(-0.1, 0.1)
            out[n, c] = ch
    out -= out.min(axis=(1, 2, 3), keepdims=True)
    out /= out.max(axis=(1, 2, 3), keepdims=True)
    return 0.05 + 0.9 * out


def box_blur(x: np.ndarray, k: int = 5) -> np.ndarray:
    """Mean filter k×k with edge replication (NumPy only)."""
    p = k // 2
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="edge")
    c = padded.cumsum(axis=2).cumsum(axis=3)
    c = np.pad(c, ((0, 0), (0, 0), (1, 0), (1, 0)))
    h, w = x.shape[-2:]
    s = c[..., k : k + h, k : k + w] - c[..., 0:h, k : k + w] - c[..., k : k + h, 0:w] + c[..., 0:h, 0:w]
    return s / (k * k)


def make_pair(kind: str, size: int, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pred, target) float64 arrays N×3×H×W in [0, 1] for one case."""
    y = smooth_image(size, seed, batch)
    rng = np.random.default_rng(seed + 1000)
    if kind == "noisy":
        x = np.clip(y + rng.normal(0, 0.05, y.shape), 0, 1)
    elif kind == "blurred":
        x = box_blur(y, 5)
    elif kind == "shifted":
        x = np.roll(y, shift=(3, -2), axis=(2, 3))
    elif kind == "identical":
        x = y.copy()
    elif kind == "constant":
        x = np.full_like(y, 0.5)
        y = np.full_like(y, 0.5)
    elif kind == "constant_vs_image":
        x = np.full_like(y, 0.5)
    elif kind == "anticorrelated":
        x = 1.0 - y
    else:
        raise ValueError(kind)
    return x, y


def case_names(sizes: tuple[int, ...] = SIZES) -> list[str]:
    return [name for name, *_ in iter_cases(sizes)]


def iter_cases(sizes: tuple[int, ...] = SIZES) -> Iterator[tuple[str, str, int, int]]:
    """(case name, kind, size, batch): every kind at every size; batch 4 at 64 px, else batch 1."""
    for size in sizes:
        batch = 4 if size == 64 else 1
        for kind in KINDS:
            yield f"{kind}_{size}_b{batch}", kind, size, batch
    yield "noisy_128_b4", "noisy", 128, 4


def get_case(name: str) -> tuple[np.ndarray, np.ndarray]:
    kind, size, b = name.rsplit("_", 2)
    return make_pair(kind, int(size), int(b[1:]))
