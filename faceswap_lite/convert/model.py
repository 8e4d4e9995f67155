"""The trained model convert applies: loaded from a run folder or a checkpoint, with its crop geometry.

The checkpoint is found, read and its model rebuilt by
:func:`faceswap_lite.train.checkpoint.load_run_model` (the newest loadable checkpoint of a run
folder), the loader ``preview`` uses too. The crop
geometry (size, padding, centering of the aligned faces it trained on) comes from the checkpoint's
``geometry`` key, else from the metadata of the face sets the checkpoint names, else from the
``--faces`` face set; without any of them convert cannot place faces the way the model saw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..errors import FaceswapLiteError
from ..faceset import FaceSetError, list_faces, read_meta
from ..models import learns_mask


class ModelError(FaceswapLiteError):
    """A model that convert cannot use: no checkpoint, no such side, no crop geometry."""


class Geometry(NamedTuple):
    """Where a face lands in its aligned crop (see :mod:`faceswap_lite.extract.align`)."""

    size: int
    padding: float
    centering: float


@dataclass
class LoadedModel:
    """A model ready to run: the module (eval, on ``device``), the side it decodes to, its geometry."""

    model: nn.Module
    side: str
    geometry: Geometry
    geometry_from: str  # where the geometry was read, for the log
    path: Path
    step: int
    device: torch.device
    resolution: int

    @property
    def learns_mask(self) -> bool:
        return learns_mask(self.model)


def choose_side(sides: list[str], to: str | None) -> str:
    """``to``, or by default the second side of a two-side model (A -> B), the only side of a one-side one."""
    if to is None:
        return sides[1] if len(sides) > 1 else sides[0]
    if to not in sides:
        raise ModelError(f"--to {to}: the model has side(s) {', '.join(sides)}; use one of them")
    return to


def _geometry_of_set(folder: str | Path) -> Geometry | None:
    """The geometry in the metadata of the first readable face of ``folder`` (None if none reads)."""
    try:
        files = list_faces(folder)
    except FaceSetError:
        return None
    for path in files:
        try:
            meta = read_meta(path)
        except FaceSetError:
            continue
        return Geometry(int(meta.size), float(meta.padding), float(meta.centering))
    return None


def _as_geometry(g: Any) -> Geometry | None:
    if isinstance(g, dict) and {"size", "padding", "centering"} <= set(g):
        return Geometry(int(g["size"]), float(g["padding"]), float(g["centering"]))
    return None


def crop_geometry(state: dict[str, Any], side: str, faces: str | Path | None, where: Path) -> tuple[Geometry, str]:
    """(geometry, where it came from): the checkpoint's (``geometry``, one per side: the decoded
    side's), else its face sets', else the ``--faces`` set's."""
    g = state.get("geometry")
    found = _as_geometry(g) or (_as_geometry(g.get(side)) if isinstance(g, dict) else None)
    if found is not None:
        return found, "checkpoint"
    for folder in dict(state.get("faces") or {}).values():
        found = _geometry_of_set(folder)
        if found is not None:
            return found, f"face set {folder}"
    if faces is not None:
        found = _geometry_of_set(faces)
        if found is not None:
            return found, f"face set {faces}"
    raise ModelError(
        f"checkpoint {where} does not record its crop geometry and the face sets it names are gone; "
        "pass --faces FACESET (faces extracted with the --size/--padding/--centering it trained on)"
    )


def load_model(model_path: str | Path, to: str | None = None, faces: str | Path | None = None,
               device: str | None = None, raw: bool = False) -> LoadedModel:
    """Load ``model_path`` (run folder or checkpoint) for decoding to side ``to`` on ``device``
    (default: the device the run trained on). Raises :class:`ModelError` / CheckpointError."""
    from ..device import resolve_device
    from ..train.checkpoint import load_run_model

    dev = resolve_device(device, "--device") if device is not None else None  # a bad name: before loading
    run = load_run_model(model_path, raw=raw)
    side = choose_side(run.sides, to)
    geometry, source = crop_geometry(run.state, side, faces, run.path)
    if dev is None:
        dev = trained_device(run.state)
    run.model.to(dev)
    return LoadedModel(model=run.model, side=side, geometry=geometry, geometry_from=source,
                       path=run.path, step=run.step, device=dev, resolution=int(run.model.resolution))


def trained_device(state: dict[str, Any]) -> torch.device:
    """The device the checkpoint's run trained on (its ``train.device``), if this machine has it."""
    from ..device import resolve_device

    trained_on = str(dict(state.get("config") or {}).get("train", {}).get("device", "auto"))
    try:
        return resolve_device(trained_on)
    except FaceswapLiteError:
        raise ModelError(f"the run trained with train.device = {trained_on!r}, which this machine does not "
                         "have; pass --device cpu (or another device here)") from None


@torch.no_grad()
def swap_batch(loaded: LoadedModel, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the model on ``crops`` (float32 N×3×R×R in [0, 1], on the CPU): (faces, masks or None),
    float32 on the CPU; bf16 autocast on a GPU, as training uses."""
    x = crops.to(loaded.device, non_blocking=True)
    use_bf16 = loaded.device.type == "cuda" and torch.cuda.is_bf16_supported()
    with torch.autocast(loaded.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        if loaded.learns_mask:
            face, mask = loaded.model.forward_with_mask(x, loaded.side)
        else:
            face, mask = loaded.model(x, loaded.side), None
    face = face.float().clamp(0, 1).cpu()
    return face, None if mask is None else mask.float().clamp(0, 1).cpu()
