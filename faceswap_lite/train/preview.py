"""Preview grids: what the model makes of faces, the picture users judge training by.

For each side S the grid has the columns ``S`` (the face), ``S->S`` (reconstruction) and, for every
other side T, ``S->T`` (the swap: S's face through T's decoder); a model that learns a mask adds
``S->T MASK``, the predicted mask of S's swap to the last other side T (what convert blends that swap
with; ``S->S MASK`` for a one-side model), white = face. Rows are faces. A header row names
the columns. Training writes this grid; ``faceswap-lite preview`` renders the same one.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..errors import FaceswapLiteError
from ..faceset import FaceSetError
from ..fsutil import check_output_folder, full_disk_is_an_error, write_atomic
from ..models import face_and_mask, learns_mask

HEADER = 18


def mask_side(side: str, sides: Sequence[str]) -> str:
    """The side whose predicted mask the grid shows for ``side``'s faces: its swap's (the last other side)."""
    others = [t for t in sides if t != side]
    return others[-1] if others else side


def column_labels(sides: Sequence[str], masks: bool = False) -> list[str]:
    cols = []
    for s in sides:
        cols += [s.upper(), f"{s.upper()}->{s.upper()}"] + [f"{s.upper()}->{t.upper()}" for t in sides if t != s]
        if masks:
            cols.append(f"{s.upper()}->{mask_side(s, sides).upper()} MASK")
    return cols


@torch.no_grad()
def render_columns(model: torch.nn.Module, faces: Mapping[str, torch.Tensor], sides: Sequence[str],
                   device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """The grid's columns as float tensors N×3×H×W in [0, 1], in :func:`column_labels` order (with the
    mask columns when the model learns a mask; a mask is shown grey)."""
    was_training = model.training
    model.eval()
    try:
        cols = []
        for s in sides:
            x = faces[s].to(device, torch.float32)
            # Each output once: the mask comes from the same forward as its side's face.
            outputs = {t: face_and_mask(model, x, t) for t in sides}
            cols += [x, outputs[s][0].float()] + [outputs[t][0].float() for t in sides if t != s]
            mask = outputs[mask_side(s, sides)][1]
            if mask is not None:
                cols.append(mask.float().expand(-1, 3, -1, -1))
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
    return grid_image(render_columns(model, faces, sides, device), column_labels(sides, learns_mask(model)))


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG atomically."""
    return _save(Path(path), rgb, *IMAGE_FORMATS[".png"])


# The formats ``preview -o`` writes, by suffix (Pillow's names and options).
IMAGE_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".png": ("PNG", {"compress_level": 3}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"lossless": True}),
}


def save_image(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image atomically in the format its suffix names (:data:`IMAGE_FORMATS`)."""
    path = Path(path)
    return _save(path, rgb, *IMAGE_FORMATS[path.suffix.lower()])


def _save(path: Path, rgb: np.ndarray, fmt: str, options: dict[str, Any]) -> Path:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **options)
    write_atomic(path, lambda fh: fh.write(buf.getvalue()))
    return path


class PreviewError(FaceswapLiteError):
    """A preview request that cannot be rendered (output, sides, faces)."""


@dataclass
class SideFaces:
    """The faces a side is previewed on, and the files of its set that could not be used, by reason."""

    images: torch.Tensor  # float32 N×3×R×R in [0, 1]
    skipped: dict[str, list[Path]] = field(default_factory=dict)


def load_faces(folder: str | Path, resolution: int, count: int) -> SideFaces:
    """The first ``count`` usable faces of a face set (sorted by name), with the files skipped on
    the way (unusable metadata, or pixels that do not decode) by reason."""
    from ..data.faces import CORRUPT, FaceStore

    store = FaceStore(folder, resolution, cache=False)
    skipped = {reason: list(paths) for reason, paths in store.skipped.items()}
    imgs = []
    for i in range(len(store)):
        if len(imgs) == count:
            break
        try:
            imgs.append(store.image(i))
        except (FaceSetError, OSError) as exc:  # pixels damaged after the metadata: show the next face
            skipped.setdefault(getattr(exc, "reason", None) or CORRUPT, []).append(store.paths[i])
    if not imgs:
        raise FaceSetError(f"face set {str(folder)!r}: no readable face")
    arr = np.stack(imgs).astype(np.float32) / 255.0
    return SideFaces(torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(), skipped)


@dataclass
class Preview:
    """What :func:`preview_run` wrote: the file, the checkpoint's step, the sides, and per side the
    face files skipped by reason."""

    path: Path
    step: int
    sides: list[str]
    skipped: dict[str, dict[str, list[Path]]]

    def warnings(self) -> list[str]:
        """``side A: skipped N face file(s): reason (names)``, one line per side and reason."""
        out = []
        for side, reasons in self.skipped.items():
            for reason, paths in sorted(reasons.items()):
                names = ", ".join(p.name for p in paths[:3]) + (f", +{len(paths) - 3} more" if len(paths) > 3 else "")
                out.append(f"side {side.upper()}: skipped {len(paths)} face file(s): {reason} ({names})")
        return out


def check_output(out: Path) -> None:
    """``-o``: a suffix :func:`save_image` writes, in a folder that exists or can be made, writable."""
    if out.suffix.lower() not in IMAGE_FORMATS:
        raise PreviewError(f"-o {str(out)!r}: cannot write {out.suffix or 'a file without a suffix'}; "
                           "name a .png, .jpg or .webp file")
    check_output_folder(out.parent, PreviewError, f"-o {str(out)!r}: its folder")


def check_sides(given: Mapping[str, str | Path | None], sides: Sequence[str]) -> None:
    """A face set given for a side the run does not have: nothing would render it."""
    for s, folder in given.items():
        if folder is not None and s not in sides:
            listed = ", ".join(t.upper() for t in sides)
            raise PreviewError(f"the run has {'one side' if len(sides) == 1 else f'{len(sides)} sides'} "
                               f"({listed}): -{s.upper()} has no decoder to render")


def preview_run(run_dir: str | Path, faces: Mapping[str, str | Path | None], out: str | Path,
                checkpoint: str | Path | None = None, count: int = 6,
                device: str | torch.device = "cpu", raw: bool = False) -> Preview:
    """Render a run's preview grid on the given (or the trained-on) face sets.

    Checks ``device`` and ``out`` first; then loads the newest loadable checkpoint of ``run_dir``
    (or ``checkpoint``) on ``device`` — a model trained on a GPU previews on the CPU — and writes
    the grid (with the mask columns when the model learns a mask) to ``out`` in the format its
    suffix names, making its folder when missing.
    """
    from ..device import resolve_device
    from .checkpoint import load_run_model

    device = resolve_device(device, "--device")
    out = Path(out)
    check_output(out)
    run = load_run_model(checkpoint if checkpoint is not None else run_dir, device, raw)
    check_sides(faces, run.sides)
    resolution = int(getattr(run.model, "resolution", 64))
    trained_on = run.state.get("faces", {})
    chosen: dict[str, SideFaces] = {}
    for s in run.sides:
        folder = faces.get(s) or trained_on.get(s)
        if folder is None:
            raise PreviewError(f"no faces for side {s.upper()}: pass -{s.upper()} FACESET")
        chosen[s] = load_faces(folder, resolution, count)
    grid = render_grid(run.model, {s: f.images for s, f in chosen.items()}, run.sides, device)
    with full_disk_is_an_error(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        save_image(out, grid)
    return Preview(out, run.step, run.sides, {s: f.skipped for s, f in chosen.items() if f.skipped})
