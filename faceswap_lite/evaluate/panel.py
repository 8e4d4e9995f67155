"""The metric panel: how good a run's faces are, on faces it never trained on.

For each side S of a run, on S's evaluation faces (the run's held-out faces from ``split.json`` by
default, or every face of a face set given with ``-A`` / ``-B``), the reconstruction S->S is scored
inside the face mask (the landmark mask training uses; the background never counts):

* ``psnr``, ``ssim``: masked PSNR (dB) and masked SSIM (:mod:`faceswap_lite.train.metrics`);
* ``ms_ssim``: MS-SSIM with as many scales as the resolution allows (3 at 64 px, 4 at 128 px);
* ``gmsd``: gradient magnitude similarity deviation (lower is better);
* ``lpips``: LPIPS v0.1, AlexNet (lower is better), only when its ImageNet weights are on the
  machine: the panel never downloads; otherwise a note says where to put the file.

MS-SSIM, GMSD and LPIPS see both faces multiplied by the mask, as the loss mix gives them to
per-item losses.

For a two-side model, S's faces are also swapped to the other side T (S->T), and scored with dlib's
face descriptors (:mod:`faceswap_lite.identity`) and landmarks:

* ``swap_id_target`` / ``swap_id_source``: mean descriptor distance of the swaps to T's and to S's
  identity centre (the mean descriptor of the side's evaluation faces at the model's resolution);
  a good swap is near T (low) and far from S (high);
* ``swap_as_target``: the share of swaps within dlib's 0.6 same-person threshold of T's centre;
* ``swap_expression``: how far the swap's 68 landmarks (dlib's shape predictor) lie from the input
  face's, in inter-ocular distances: low means the pose and expression were kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..errors import FaceswapLiteError
from ..identity import DEFAULT_THRESHOLD as SAME_PERSON

if TYPE_CHECKING:
    from ..train.checkpoint import RunModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_better: bool
    fmt: str


METRICS = (
    Metric("psnr", "PSNR dB (masked)", True, "{:.2f}"),
    Metric("ssim", "SSIM (masked)", True, "{:.4f}"),
    Metric("ms_ssim", "MS-SSIM", True, "{:.4f}"),
    Metric("gmsd", "GMSD", False, "{:.4f}"),
    Metric("lpips", "LPIPS", False, "{:.4f}"),
    Metric("swap_id_target", "swap: ID dist to other side", False, "{:.3f}"),
    Metric("swap_id_source", "swap: ID dist to own side", True, "{:.3f}"),
    Metric("swap_as_target", "swap: called other side", True, "{:.0%}"),
    Metric("swap_expression", "swap: landmark dist (IOD)", False, "{:.3f}"),
)
BY_KEY = {m.key: m for m in METRICS}


class EvaluateError(FaceswapLiteError):
    """A run or face set that cannot be evaluated."""


@dataclass
class SideFaces:
    """One side's evaluation faces at the model's resolution."""

    images: torch.Tensor  # float32 N×3×R×R in [0, 1]
    masks: torch.Tensor  # float32 N×1×R×R, the face mask
    landmarks: np.ndarray  # float32 N×68×2, R×R pixels
    names: list[str]
    source: str  # where they come from, for the report


@dataclass
class Panel:
    """The figures of one run: ``metrics[side][key]``, plus where they come from."""

    run: str
    step: int
    sides: list[str]
    faces: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, float]]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "step": self.step, "sides": self.sides, "faces": self.faces,
                "metrics": self.metrics, "notes": self.notes}

    def table(self) -> str:
        """The panel as an aligned text table: a row per metric, a column per side."""
        keys = [m for m in METRICS if any(m.key in self.metrics[s] for s in self.sides)]
        head = ["metric"] + [f"side {s.upper()} ({self.faces[s]['count']} faces)" for s in self.sides]
        rows = [head]
        for m in keys:
            arrow = "↑" if m.higher_better else "↓"
            rows.append([f"{m.label} {arrow}"] + [fmt_value(m.key, self.metrics[s].get(m.key)) for s in self.sides])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def fmt_value(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if value != value:
        return "nan"
    return BY_KEY[key].fmt.format(value)


# ------------------------------------------------------------------------------------------------
# The run: its model and its faces


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None,
             device: str | torch.device = "cpu", raw: bool = False) -> RunModel:
    """The run's model (eval mode, on ``device``) with its checkpoint (``checkpoint``, else the run's newest)."""
    from ..train.checkpoint import load_run_model

    run_dir = Path(run_dir)
    if checkpoint is None and not run_dir.is_dir():
        raise EvaluateError(f"run folder {str(run_dir)!r} does not exist; train one with 'faceswap-lite train'")
    return load_run_model(run_dir if checkpoint is None else checkpoint, device, raw)


def held_out_names(run_dir: Path, side: str) -> list[str]:
    """The file names the run held out for ``side`` (its ``split.json``)."""
    from ..faceset import FaceSetError
    from ..runfolder import RunFolder

    run = RunFolder(run_dir)
    path, hint = run.split, f"pass -{side.upper()} FACES to evaluate on a face set"
    try:
        splits = run.read_split()
    except FaceSetError as exc:  # its fix (delete the file) is training's; evaluating needs the faces
        raise EvaluateError(f"{exc.message.partition('; delete it')[0]}; {hint}") from None
    if not splits:
        raise EvaluateError(f"{path} not found: this run records no held-out split; {hint}")
    if side not in splits:
        raise EvaluateError(f"{path} is damaged (no split for side {side.upper()}); {hint}")
    names = splits[side].val_files
    if not names:
        raise EvaluateError(f"the run {run_dir} held out no faces for side {side.upper()} (its face set is too small "
                            f"or data.val_fraction = 0); {hint}")
    return names


def load_side_faces(folder: str | Path, resolution: int, names: list[str] | None, blur: float,
                    source: str) -> SideFaces:
    """The faces ``names`` of a face set (all of them when None), resized, with their face masks."""
    from ..config import MaskConfig
    from ..data.dataset import FaceDataset
    from ..data.faces import FaceStore

    store = FaceStore(folder, resolution, cache=False)
    index = {p.name: i for i, p in enumerate(store.paths)}
    if names is None:
        chosen = list(range(len(store)))
    else:
        missing = [n for n in names if n not in index]
        if len(missing) == len(names):
            raise EvaluateError(f"none of the held-out faces is in {folder} any more (e.g. {names[0]}); pass "
                                "the face set to evaluate on with -A / -B")
        chosen = [index[n] for n in names if n in index]
    ds = FaceDataset(store, chosen, augment=None, mask=MaskConfig(face=True, blur=blur))
    samples = [ds.sample(i) for i in range(len(ds))]
    return SideFaces(torch.stack([s["target"] for s in samples]), torch.stack([s["face"] for s in samples]),
                     store.landmarks[chosen], [store.paths[i].name for i in chosen], source)


def run_faces(run_dir: Path, run: RunModel, given: Mapping[str, str | Path | None]) -> dict[str, SideFaces]:
    """Every side's evaluation faces at the model's resolution: the face set given for it, else the
    run's held-out faces."""
    resolution = int(run.model.resolution)
    trained_on = run.state.get("faces", {})
    blur = float(run.state.get("config", {}).get("mask", {}).get("blur", 0.02))
    out = {}
    for s in run.sides:
        folder = given.get(s)
        if folder is not None:
            out[s] = load_side_faces(folder, resolution, None, blur, f"all of {folder}")
            continue
        if s not in trained_on:
            raise EvaluateError(f"the checkpoint does not say which face set side {s.upper()} trained on; pass "
                                f"-{s.upper()} FACES")
        out[s] = load_side_faces(trained_on[s], resolution, held_out_names(run_dir, s), blur,
                                 f"held out of {trained_on[s]}")
    return out


# ------------------------------------------------------------------------------------------------
# Image metrics


class ImageMetrics:
    """The reconstruction metrics for one resolution (MS-SSIM scales, LPIPS if its weights are here)."""

    def __init__(self, resolution: int, device: torch.device | str) -> None:
        from ..losses.base import settings_that_fit
        from ..registry import LOSSES

        self.notes: list[str] = []
        ms_ssim = settings_that_fit(LOSSES.get("ms_ssim"), {}, resolution)  # as many scales as fit
        self.scales = ms_ssim["scales"] if ms_ssim else 0
        self.ms_ssim = LOSSES.build("ms_ssim", ms_ssim).to(device) if ms_ssim else None
        self.gmsd = LOSSES.build("gmsd").to(device)
        self.lpips = self._lpips(device)

    def _lpips(self, device: torch.device | str) -> nn.Module | None:
        from ..losses.base import unavailable
        from ..registry import LOSSES

        settings = {"net": "alex", "spatial": False}
        missing = unavailable(LOSSES.get("lpips"), settings)
        if missing:  # never download from here: say how to add the weights
            self.notes.append(f"lpips left out: {missing} to add LPIPS")
            return None
        try:
            return LOSSES.build("lpips", settings).to(device)
        except FaceswapLiteError as exc:
            self.notes.append(f"lpips left out: {exc.message}")
            return None

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-item values of every metric for one batch."""
        from ..train.metrics import masked_psnr, masked_ssim

        out = {"psnr": masked_psnr(pred, target, mask), "ssim": masked_ssim(pred, target, mask)}
        p, t = pred * mask, target * mask
        if self.ms_ssim is not None:
            out["ms_ssim"] = self.ms_ssim.per_item(p, t)
        out["gmsd"] = self.gmsd(p, t)
        if self.lpips is not None:
            out["lpips"] = self.lpips(p, t)
        return out


@torch.no_grad()
def reconstruct(model: nn.Module, images: torch.Tensor, side: str, device: torch.device | str,
                chunk: int = 32) -> torch.Tensor:
    """The model's faces for ``side`` (float32 N×3×R×R in [0, 1], on the CPU)."""
    outs = [model(x.to(device), side).float().clamp(0, 1).cpu() for x in images.split(chunk)]
    return torch.cat(outs)


def image_scores(metrics: ImageMetrics, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                 device: torch.device | str, chunk: int = 32) -> dict[str, float]:
    """Every image metric's mean over the faces."""
    sums: dict[str, float] = {}
    for p, t, m in zip(pred.split(chunk), target.split(chunk), mask.split(chunk)):
        for key, v in metrics(p.to(device), t.to(device), m.to(device)).items():
            sums[key] = sums.get(key, 0.0) + float(v.double().sum())
    return {k: v / pred.shape[0] for k, v in sums.items()}


# ------------------------------------------------------------------------------------------------
# Swap identity and expression (dlib)


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """N×3×H×W float in [0, 1] -> H×W×3 uint8 RGB arrays (what dlib reads)."""
    arr = (images.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    return [np.ascontiguousarray(a) for a in arr]


def predict_landmarks(rgb: np.ndarray, box_from: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks of the face in ``rgb`` in the box around the landmarks ``box_from``."""
    from ..dlib_models import landmarks_in_box

    x0, y0 = np.floor(box_from.min(0))
    x1, y1 = np.ceil(box_from.max(0))
    return landmarks_in_box(rgb, (x0, y0, x1, y1))


def side_centre(images: torch.Tensor, landmarks: np.ndarray) -> np.ndarray:
    """A side's identity: the centre of its faces' descriptors, computed at this resolution."""
    from ..identity import centre, descriptor

    return centre(np.stack([descriptor(rgb, lm) for rgb, lm in zip(to_uint8(images), landmarks)]))


def _interocular(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


def swap_scores(inputs: torch.Tensor, swaps: torch.Tensor, landmarks: np.ndarray, source_centre: np.ndarray,
                target_centre: np.ndarray) -> dict[str, float]:
    """Identity and expression of ``swaps`` (the model's target-side faces for ``inputs``).

    ``landmarks``: the inputs' 68 landmarks (they place dlib's box on both faces).
    """
    from ..identity import descriptor, distance

    to_t, to_s, moved = [], [], []
    for x, y, lm in zip(to_uint8(inputs), to_uint8(swaps), landmarks):
        lm_x, lm_y = predict_landmarks(x, lm), predict_landmarks(y, lm)
        d = descriptor(y, lm_y)
        to_t.append(distance(d, target_centre))
        to_s.append(distance(d, source_centre))
        moved.append(float(np.linalg.norm(lm_x - lm_y, axis=1).mean()) / max(_interocular(lm_x), 1.0))
    return {"swap_id_target": float(np.mean(to_t)), "swap_id_source": float(np.mean(to_s)),
            "swap_as_target": float(np.mean(np.array(to_t) < SAME_PERSON)),
            "swap_expression": float(np.mean(moved))}


# ------------------------------------------------------------------------------------------------
# The panel


def evaluate_run(run_dir: str | Path, faces: Mapping[str, str | Path | None] | None = None,
                 checkpoint: str | Path | None = None, device: str | torch.device = "cpu",
                 raw: bool = False) -> Panel:
    """The metric panel of a run (see the module docstring); ``device`` is checked first (the
    ``--device`` option's one parser, :func:`faceswap_lite.device.resolve_device`). A run with
    averaged weights (``train.ema``) is measured with them unless ``raw``."""
    from ..device import resolve_device

    device = resolve_device(device, "--device")
    run_dir = Path(run_dir)
    run = load_run(run_dir, checkpoint, device, raw)
    unknown = [s for s, f in (faces or {}).items() if f is not None and s not in run.sides]
    if unknown:
        raise EvaluateError(f"-{unknown[0].upper()} given, but the run has no side {unknown[0].upper()} "
                            f"(its sides: {', '.join(s.upper() for s in run.sides)})")
    data = run_faces(run_dir, run, faces or {})
    panel = panel_for(run.model, data, device, str(run_dir), run.step)
    for s in run.sides:
        if (faces or {}).get(s) is None:
            panel.notes.append(split_distance_note(run_dir, run, s))
    return panel


def split_distance_note(run_dir: Path, run: RunModel, side: str) -> str:
    """How far the held-out faces of ``side`` are from its trained ones, in source frames."""
    from ..data.faces import FaceStore
    from ..data.split import nearest_trained
    from ..runfolder import RunFolder

    split = RunFolder(run_dir).read_split()[side]
    keys = FaceStore(run.state["faces"][side], 64, cache=False).keys
    held, gap = set(split.val_files), set(split.gap_files)
    val = [i for i, k in enumerate(keys) if k.name in held]
    train = [i for i, k in enumerate(keys) if k.name not in held and k.name not in gap]
    near = nearest_trained(keys, train, val)
    if near is None:
        return f"side {side.upper()}: no held-out face has a trained frame of its own clip (photos, or whole clips)"
    return f"side {side.upper()}: the nearest trained frame is {near} frames from a held-out face"


def panel_for(model: nn.Module, data: Mapping[str, SideFaces], device: str | torch.device, run: str,
              step: int, metrics: ImageMetrics | None = None,
              centres: Mapping[str, np.ndarray] | None = None) -> Panel:
    """The panel of ``model`` on ``data`` (compare passes its metrics and identity centres, shared by every mix)."""
    sides = list(data)
    metrics = metrics or ImageMetrics(int(model.resolution), device)
    notes = list(metrics.notes)
    if metrics.ms_ssim is not None:
        notes.append(f"ms_ssim uses {metrics.scales} scales (what {int(model.resolution)} px allows)")
    values: dict[str, dict[str, float]] = {}
    for s in sides:
        d = data[s]
        values[s] = image_scores(metrics, reconstruct(model, d.images, s, device), d.images, d.masks, device)
    if len(sides) == 2:
        centres = centres or {s: side_centre(data[s].images, data[s].landmarks) for s in sides}
        for s, t in (sides, sides[::-1]):
            swaps = reconstruct(model, data[s].images, t, device)
            values[s].update(swap_scores(data[s].images, swaps, data[s].landmarks, centres[s], centres[t]))
    faces = {s: {"source": data[s].source, "count": int(data[s].images.shape[0])} for s in sides}
    return Panel(run, step, sides, faces, values, notes)
