"""Preview grids: what the model makes of faces, the picture users judge training by.

For each side S the grid has the columns ``S`` (the face), ``S->S`` (reconstruction) and, for every
other side T, ``S->T`` (the swap: S's face through T's decoder). Rows are faces. A header row names
the columns. Training writes this grid; ``faceswap-lite preview`` renders the same one.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .checkpoint import atomic_write_bytes

HEADER = 18


def column_labels(sides: Sequence[str]) -> list[str]:
    cols = []
    for s in sides:
        cols += [s.upper(), f"{s.upper()}->{s.upper()}"] + [f"{s.upper()}->{t.upper()}" for t in sides if t != s]
    return cols


@torch.no_grad()
def render_columns(model: torch.nn.Module, faces: Mapping[str, torch.Tensor], sides: Sequence[str],
                   device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """The grid's columns as float tensors N×3×H×W in [0, 1], in :func:`column_labels` order."""
    was_training = model.training
    model.eval()
    try:
        cols = []
        for s in sides:
            x = faces[s].to(device, torch.float32)
            cols.append(x)
            cols.append(model(x, s).float())
            cols += [model(x, t).float() for t in sides if t != s]
    finally:
        model.train(was_training)
    return [c.clamp(0, 1).cpu() for c in cols]


def grid_image(columns: Sequence[torch.Tensor], labels: Sequence[str]) -> np.ndarray:
    """Tile columns (each N×3×H×W, same H×W; N may differ: missing rows stay dark) into RGB uint8."""
    rows = max(c.shape[0] for c in columns)
    h, w = columns[0].shape[-2:]
    grid = np.full((HEADER + rows * h, len(columns) * w, 3), 24, np.uint8)
    for j, col in enumerate(columns):
        arr = (col.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
        for i in range(arr.shape[0]):
            grid[HEADER + i * h: HEADER + (i + 1) * h, j * w:(j + 1) * w] = arr[i]
    img = Image.fromarray(grid)
    draw = ImageDraw.Draw(img)
    for j, label in enumerate(labels):
        draw.text((j * w + 4, 3), label, fill=(235, 235, 235))
    return np.asarray(img)


def render_grid(model: torch.nn.Module, faces: Mapping[str, torch.Tensor], sides: Sequence[str],
                device: torch.device | str = "cpu") -> np.ndarray:
    """The preview grid as RGB uint8 H×W×3."""
    return grid_image(render_columns(model, faces, sides, device), column_labels(sides))


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG atomically."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
    atomic_write_bytes(Path(path), lambda fh: fh.write(buf.getvalue()))
    return Path(path)
