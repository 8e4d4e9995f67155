"""compare's outputs: the panel of every mix as ``report.json`` and ``report.md``, the same held-out
faces through every mix (``grid.png``) and every mix's validation curves (``curves.png``, matplotlib).
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..fsutil import write_atomic
from .panel import (
    BY_KEY,
    METRICS,
    ImageMetrics,
    SideFaces,
    fmt_value,
    load_run,
    panel_for,
    reconstruct,
    run_faces,
)

if TYPE_CHECKING:
    from .compare import Plan

log = logging.getLogger(__name__)

GRID_FACES = 3  # rows per block in grid.png, spread over the held-out faces
GRID_SIZE = 96  # pixels per face in grid.png
CURVE_TAGS = ("psnr", "ssim")  # val/<side>/<tag>, one panel each (val/<side>/loss is each mix's own loss: not comparable)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from ..machine import cpu_name

    info: dict[str, Any] = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
                            "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    return info


def _device(plan: Plan) -> str:
    from ..train.trainer import resolve_device

    return str(resolve_device(plan.base.train.device))


def evaluate_mixes(plan: Plan) -> tuple[dict[str, Any], dict[str, SideFaces], dict[str, nn.Module], list[str]]:
    """Every finished mix's panel on the same faces, with shared metrics and identity centres; also
    every finished mix's model (the grid's), each loaded once."""
    from .panel import side_centre

    device = _device(plan)
    done = [m for m in plan.mixes if plan.states[m.name].status == "done"]
    results: dict[str, Any] = {}
    data: dict[str, SideFaces] = {}
    models: dict[str, nn.Module] = {}
    notes: list[str] = []
    if not done:
        return results, data, models, notes
    runs = {m.name: load_run(plan.out / m.name, device=device) for m in done}
    first = done[0].name
    data = run_faces(plan.out / first, runs[first], {})
    metrics = ImageMetrics(int(runs[first].model.resolution), device)
    centres = ({s: side_centre(d.images, d.landmarks) for s, d in data.items()} if len(data) == 2 else None)
    first_split = _split_of(plan.out / first)
    for m in done:
        if _split_of(plan.out / m.name) != first_split:
            notes.append(f"{m.name}: its split.json differs from {first}'s; all are scored on "
                         f"{first}'s held-out faces")
        run = runs[m.name]
        panel = panel_for(run.model, data, device, str(plan.out / m.name), run.step, metrics, centres)
        results[m.name] = {"metrics": panel.metrics, "step": panel.step}
        models[m.name] = run.model
        notes = panel.notes + [n for n in notes if n not in panel.notes]
    return results, data, models, notes


def _split_of(run: Path) -> dict[str, list[str]] | None:
    """A run's held-out file names per side (None when its split.json is missing or damaged)."""
    from ..faceset import FaceSetError
    from ..train.data import read_split

    try:
        return {s: sorted(sp.val_files) for s, sp in read_split(run).items()} or None
    except FaceSetError:
        return None


def write_reports(plan: Plan) -> dict[str, Any]:
    """Evaluate, then write report.json, report.md, grid.png and curves.png (each atomically)."""
    results, data, models, notes = evaluate_mixes(plan)
    report = {
        "budget": plan.budget(),
        "machine": machine(),
        "faces": {s: {"folder": plan.faces[s], "held_out": int(d.images.shape[0])} for s, d in data.items()}
        or {s: {"folder": f} for s, f in plan.faces.items()},
        "command": plan.command,
        "notes": notes,
        "mixes": {},
    }
    for m in plan.mixes:
        st = plan.states[m.name]
        entry: dict[str, Any] = {"spec": m.spec, "losses": [dict(d) for d in m.losses], "status": st.status,
                                 "error": st.error, "step": st.step, "seconds": round(st.seconds, 1)}
        entry.update(results.get(m.name, {}))
        report["mixes"][m.name] = entry
    _write_text(plan.out / "report.json", json.dumps(report, indent=1) + "\n")
    _write_text(plan.out / "report.md", markdown(report, [m.label() for m in plan.mixes]))
    done = [m.name for m in plan.mixes if m.name in results]
    if models:
        save_grid(plan, models, data, plan.out / "grid.png")
    save_curves({n: plan.out / n for n in done} or {m.name: plan.out / m.name for m in plan.mixes},
                plan.out / "curves.png")
    return report


def _write_text(path: Path, text: str) -> None:
    data = text.encode()
    write_atomic(path, lambda fh: fh.write(data))


# ------------------------------------------------------------------------------------------------
# report.md


def columns(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(side, metric) pairs present in any mix, in the panel's order."""
    sides: list[str] = []
    for entry in report["mixes"].values():
        for s in entry.get("metrics", {}):
            if s not in sides:
                sides.append(s)
    out = []
    for s in sides:
        for m in METRICS:
            if any(m.key in e.get("metrics", {}).get(s, {}) for e in report["mixes"].values()):
                out.append((s, m.key))
    return out


def best_per_column(report: Mapping[str, Any], cols: Sequence[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """The mix names with the best value of each column (ties all count)."""
    best: dict[tuple[str, str], set[str]] = {}
    for s, key in cols:
        vals = {n: e["metrics"][s][key] for n, e in report["mixes"].items()
                if key in e.get("metrics", {}).get(s, {}) and e["metrics"][s][key] == e["metrics"][s][key]}
        if not vals:
            continue
        target = max(vals.values()) if BY_KEY[key].higher_better else min(vals.values())
        best[(s, key)] = {n for n, v in vals.items() if fmt_value(key, v) == fmt_value(key, target)}
    return best


def _side_table(report: Mapping[str, Any], labels: Sequence[str], side: str,
                cols: Sequence[tuple[str, str]], best: Mapping[tuple[str, str], set[str]]) -> list[str]:
    """One side's table: a row per mix, a column per metric, the best per column in bold."""
    mine = [(s, k) for s, k in cols if s == side]
    head = ["mix", "losses", "steps", "min"] + [
        f"{BY_KEY[k].label} {'↑' if BY_KEY[k].higher_better else '↓'}" for _, k in mine]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (name, e), label in zip(report["mixes"].items(), labels):
        row = [f"`{name}`", label.replace("|", "\\|"), str(e["step"]), f"{e['seconds'] / 60:.1f}"]
        if e["status"] != "done":
            row += [f"**{e['status']}**: {str(e.get('error') or 'not trained yet').replace('|', '/')}"]
            row += [""] * (len(mine) - 1)
        else:
            for s, k in mine:
                text = fmt_value(k, e.get("metrics", {}).get(s, {}).get(k))
                row.append(f"**{text}**" if name in best.get((s, k), set()) else text)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown(report: Mapping[str, Any], labels: Sequence[str]) -> str:
    cols = columns(report)
    best = best_per_column(report, cols)
    sides = list(dict.fromkeys(s for s, _ in cols))
    lines = ["# Loss-mix comparison", "",
             f"Budget: {report['budget']}. Every mix has the same model, seed, data order, held-out split and "
             "augmentation; only the `[[loss]]` tables differ.", ""]
    for s, f in report["faces"].items():
        held = f" ({f['held_out']} held-out faces, the same for every mix)" if "held_out" in f else ""
        lines.append(f"- Side {s.upper()}: `{f['folder']}`{held}")
    mach = report["machine"]
    load = f", load average {mach['load_average']}" if "load_average" in mach else ""
    gpus = f", GPUs {', '.join(mach['gpus'])}" if mach.get("gpus") else ""
    lines += [f"- Machine: {mach['cpu']}, {mach['cores']} cores{gpus}, torch {mach['torch']}{load} "
              "(when the report was written)", ""]
    for s in sides or [next(iter(report["faces"]), "a")]:
        other = [t for t in sides if t != s]
        swap = f"; swaps {s.upper()}->{other[0].upper()}" if other else ""
        lines += [f"## Side {s.upper()}: reconstructions {s.upper()}->{s.upper()}{swap}", ""]
        lines += _side_table(report, labels, s, cols, best) + [""]
    lines += ["Best per column in **bold**. ↑: higher is better, ↓: lower is better. Image metrics are "
              "measured inside the face mask on held-out faces; swap metrics use dlib's face descriptors "
              "(distance to each side's centre; called the other side within 0.6) and landmarks (in "
              "inter-ocular distances); see `faceswap-lite evaluate --help`.", ""]
    lines += [f"- {n}" for n in report["notes"]]
    lines += ["", "![the same held-out faces through every mix](grid.png)", "",
              "![validation curves of every mix](curves.png)", "",
              "Reproduce (resumes unfinished mixes when run again):", "", "```", report["command"] or "(not recorded)",
              "```", "", "TensorBoard with every mix's curves: `faceswap-lite monitor " + "<this folder>`", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# grid.png


def _upscale(images: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(images, size=(GRID_SIZE, GRID_SIZE), mode="bilinear",
                                           align_corners=False).clamp(0, 1)


def save_grid(plan: Plan, models: Mapping[str, nn.Module], data: Mapping[str, SideFaces], out: Path) -> None:
    """Blocks of rows S->S (and S->T): the input face, then one column per mix (``models``, in order)."""
    from ..train.preview import grid_image, save_png

    device = _device(plan)
    sides = list(data)
    names = list(models)
    blocks = []
    for s in sides:
        n = data[s].images.shape[0]
        faces = data[s].images[np.unique(np.linspace(0, n - 1, min(GRID_FACES, n)).round().astype(int))]
        for t in [s] + [x for x in sides if x != s]:
            cols = [_upscale(faces)] + [_upscale(reconstruct(models[n], faces, t, device)) for n in names]
            labels = [f"{s.upper()} (input)"] + [f"{n} {s.upper()}->{t.upper()}" for n in names]
            blocks.append(grid_image(cols, labels))
    save_png(out, np.concatenate(blocks, axis=0))


# ------------------------------------------------------------------------------------------------
# curves.png (also the README's curves: tools/make_readme_images.py)


def read_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """A run's TensorBoard scalars, ``{tag: [(step, value), ...]}`` by step ({} without logs).

    Sorted by step: a resumed run's event files are read in name order, and two files written
    within one second are named by process id, not by time."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not (run / "tb").is_dir():
        return {}
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: sorted((e.step, e.value) for e in acc.Scalars(t)) for t in acc.Tags()["scalars"]}


def plot_curves(series: Mapping[str, Mapping[str, list[tuple[int, float]]]], tags: Sequence[str], out: Path,
                title: str = "", cols: int = 3) -> None:
    """One panel per tag, one line per series (``{label: {tag: points}}``), saved as PNG (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    tags = list(tags) or ["(no scalars)"]
    cols = min(cols, len(tags))
    rows = (len(tags) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, tag in zip(axes.flat, tags):
        for label, scalars in series.items():
            pts = scalars.get(tag)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, linewidth=1.4)
        ax.set_title(tag, fontsize=10)
        ax.set_xlabel("step")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tags):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if len(series) > 1 and labels:  # a first panel with no curve (no scalar logged yet) has no legend
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08 if len(series) > 1 else 0, 1, 1))
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_atomic(out, lambda fh: fh.write(buf.getvalue()))


def save_curves(runs: Mapping[str, Path], out: Path) -> None:
    """Every run's validation curves (``val/<side>/psnr``, ``ssim``) on shared axes."""
    series = {name: read_scalars(run) for name, run in runs.items()}
    present = {t for s in series.values() for t in s}
    sides = sorted({t.split("/")[1] for t in present if t.startswith("val/")})
    tags = [f"val/{s}/{k}" for s in sides for k in CURVE_TAGS if f"val/{s}/{k}" in present]
    plot_curves(series, tags, out, title="validation on the held-out faces", cols=len(CURVE_TAGS))
