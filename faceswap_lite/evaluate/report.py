"""compare's outputs: the panel of every mix as ``report.json`` and ``report.md``, the same held-out
faces through every mix (``grid.png``) and every mix's validation curves (``curves.png``, matplotlib).

With ``--seeds`` every run (mix, seed) is scored the same way; ``report.json`` keeps each seed's
panel (``mixes.NAME.seeds.S``) and adds ``mean``, ``min`` and ``max`` over the mix's finished seeds,
and ``report.md`` shows ``mean [min–max]``. The figures show the first seed's runs only: a column or
a curve per run would multiply them by the seed count, and one seed already shows what a mix's
faces look like.
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
from ..runfolder import RunFolder, read_scalars
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
    from .compare import Plan, Run

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
    from ..device import resolve_device

    return str(resolve_device(plan.base.train.device))


def evaluate_mixes(plan: Plan) -> tuple[dict[str, Any], dict[str, SideFaces], dict[str, nn.Module], list[str]]:
    """Every finished run's panel on the same faces, with shared metrics and identity centres (by
    ``Run.key``); also the grid's models (by mix name: the first seed's run of each mix)."""
    from .panel import side_centre

    device = _device(plan)
    done = [r for r in plan.runs() if plan.state(r).status == "done"]
    results: dict[str, Any] = {}
    data: dict[str, SideFaces] = {}
    models: dict[str, nn.Module] = {}
    notes: list[str] = []
    if not done:
        return results, data, models, notes
    first = done[0].key
    first_run = load_run(plan.out / first, device=device)
    data = run_faces(plan.out / first, first_run, {})
    metrics = ImageMetrics(int(first_run.model.resolution), device)
    centres = ({s: side_centre(d.images, d.landmarks) for s, d in data.items()} if len(data) == 2 else None)
    first_split = _split_of(plan.out / first)
    grid_runs = {r.key for r in _first_seed_runs(plan)}
    for r in done:
        if _split_of(plan.out / r.key) != first_split:
            notes.append(f"{r.key}: its split.json differs from {first}'s; all are scored on "
                         f"{first}'s held-out faces")
        run = first_run if r.key == first else load_run(plan.out / r.key, device=device)
        panel = panel_for(run.model, data, device, str(plan.out / r.key), run.step, metrics, centres)
        results[r.key] = {"metrics": panel.metrics, "step": panel.step}
        if r.key in grid_runs:
            models[r.mix.name] = run.model
        notes = panel.notes + [n for n in notes if n not in panel.notes]
    return results, data, models, notes


def _first_seed_runs(plan: Plan) -> list[Run]:
    """The runs the figures show: each mix's only run, or its run with the first of ``--seeds``."""
    return [plan.runs(m)[0] for m in plan.mixes]


def _split_of(run: Path) -> dict[str, list[str]] | None:
    """A run's held-out file names per side (None when its split.json is missing or damaged)."""
    from ..faceset import FaceSetError

    try:
        return {s: sorted(sp.val_files) for s, sp in RunFolder(run).read_split().items()} or None
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
    if plan.seeds is not None:
        report["seeds"] = list(plan.seeds)
    for m in plan.mixes:
        entry: dict[str, Any] = {"spec": m.spec, "losses": [dict(d) for d in m.losses]}
        if plan.seeds is None:  # the one run's figures, as before --seeds existed
            entry.update(_run_entry(plan, plan.runs(m)[0], results))
        else:
            runs = {str(r.seed): _run_entry(plan, r, results) for r in plan.runs(m)}
            entry.update(_seed_summary(runs))
            entry["seeds"] = runs
        report["mixes"][m.name] = entry
    _write_text(plan.out / "report.json", json.dumps(report, indent=1) + "\n")
    _write_text(plan.out / "report.md", markdown(report, [m.label() for m in plan.mixes]))
    if models:
        save_grid(plan, models, data, plan.out / "grid.png")
    shown = _first_seed_runs(plan)
    save_curves({r.mix.name: plan.out / r.key for r in shown if r.key in results}
                or {r.mix.name: plan.out / r.key for r in shown}, plan.out / "curves.png")
    return report


def _run_entry(plan: Plan, run: Run, results: Mapping[str, Any]) -> dict[str, Any]:
    """One run's state and (when finished) its panel, as report.json holds it."""
    st = plan.state(run)
    entry: dict[str, Any] = {"status": st.status, "error": st.error, "step": st.step,
                             "seconds": round(st.seconds, 1)}
    entry.update(results.get(run.key, {}))
    return entry


def _seed_summary(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A mix's figures over its seeds: the finished seeds' count, their steps and mean seconds, and
    ``mean``/``min``/``max`` of each metric (over the finished seeds that have it). The status is
    done only when every seed is; a failed seed's error is the first one."""
    done = [e for e in runs.values() if e["status"] == "done"]
    not_done = [e for e in runs.values() if e["status"] != "done"]
    status = "done" if not not_done else "failed" if any(e["status"] == "failed" for e in not_done) else "pending"
    error = next((e["error"] for e in not_done if e.get("error")), None)
    summary: dict[str, Any] = {
        "status": status, "error": error, "seeds_done": len(done), "seeds_total": len(runs),
        "step": [e["step"] for e in done] or [e["step"] for e in runs.values()],
        "seconds": round(sum(e["seconds"] for e in runs.values()) / max(1, len(runs)), 1),
        "mean": {}, "min": {}, "max": {}}
    pairs = dict.fromkeys((side, key) for e in done for side, values in e.get("metrics", {}).items() for key in values)
    for side, key in pairs:
        got = [v for e in done if (v := e.get("metrics", {}).get(side, {}).get(key)) is not None]
        if any(v != v for v in got):  # a NaN seed makes the mix's figure NaN, not a smaller sample
            got = [float("nan")]
        for stat, value in (("mean", sum(got) / len(got)), ("min", min(got)), ("max", max(got))):
            summary[stat].setdefault(side, {})[key] = value
    return summary


def _write_text(path: Path, text: str) -> None:
    data = text.encode()
    write_atomic(path, lambda fh: fh.write(data))


# ------------------------------------------------------------------------------------------------
# report.md


def _figures(entry: Mapping[str, Any]) -> Mapping[str, Mapping[str, float]]:
    """A mix's metrics by side as its table ranks them: its one run's, or the mean over its seeds."""
    return entry.get("mean", {}) if "seeds" in entry else entry.get("metrics", {})


def columns(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(side, metric) pairs present in any mix, in the panel's order."""
    sides: list[str] = []
    for entry in report["mixes"].values():
        for s in _figures(entry):
            if s not in sides:
                sides.append(s)
    out = []
    for s in sides:
        for m in METRICS:
            if any(m.key in _figures(e).get(s, {}) for e in report["mixes"].values()):
                out.append((s, m.key))
    return out


def best_per_column(report: Mapping[str, Any], cols: Sequence[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """The mix names with the best value of each column (ties all count; with seeds, by the mean)."""
    best: dict[tuple[str, str], set[str]] = {}
    for s, key in cols:
        got = {n: _figures(e).get(s, {}).get(key) for n, e in report["mixes"].items()}
        vals = {n: v for n, v in got.items() if v is not None and v == v}  # v == v: not NaN
        if not vals:
            continue
        target = max(vals.values()) if BY_KEY[key].higher_better else min(vals.values())
        best[(s, key)] = {n for n, v in vals.items() if fmt_value(key, v) == fmt_value(key, target)}
    return best


def _side_table(report: Mapping[str, Any], labels: Sequence[str], side: str,
                cols: Sequence[tuple[str, str]], best: Mapping[tuple[str, str], set[str]]) -> list[str]:
    """One side's table: a row per mix, a column per metric, the best per column in bold (with
    seeds: a ``seeds`` column, each cell ``mean [min–max]`` over the finished seeds)."""
    mine = [(s, k) for s, k in cols if s == side]
    seeded = "seeds" in report
    head = ["mix", "losses", *(["seeds"] if seeded else []), "steps", "min"] + [
        f"{BY_KEY[k].label} {'↑' if BY_KEY[k].higher_better else '↓'}" for _, k in mine]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (name, e), label in zip(report["mixes"].items(), labels):
        row = [f"`{name}`", label.replace("|", "\\|")]
        if seeded:
            done, total = e["seeds_done"], e["seeds_total"]
            row.append(str(done) if done == total else f"{done} of {total}")
        row += [_steps(e["step"]), f"{e['seconds'] / 60:.1f}"]
        # a mix with no figure says why; with seeds, a mix with some seeds done shows them
        if e["status"] != "done" and not (seeded and e["seeds_done"]):
            row += [f"**{e['status']}**: {str(e.get('error') or 'not trained yet').replace('|', '/')}"]
            row += [""] * (len(mine) - 1)
        else:
            for s, k in mine:
                text = _cell(e, s, k)
                row.append(f"**{text}**" if name in best.get((s, k), set()) else text)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _steps(step: int | list[int]) -> str:
    """A run's step, or the seeds' steps (``4``, or ``3–4`` when they differ)."""
    if isinstance(step, int):
        return str(step)
    return str(min(step)) if min(step) == max(step) else f"{min(step)}–{max(step)}"


def _cell(entry: Mapping[str, Any], side: str, key: str) -> str:
    if "seeds" not in entry:
        return fmt_value(key, entry.get("metrics", {}).get(side, {}).get(key))
    mean = entry["mean"].get(side, {}).get(key)
    if mean is None:
        return fmt_value(key, None)
    return (f"{fmt_value(key, mean)} [{fmt_value(key, entry['min'][side][key])}–"
            f"{fmt_value(key, entry['max'][side][key])}]")


def markdown(report: Mapping[str, Any], labels: Sequence[str]) -> str:
    cols = columns(report)
    best = best_per_column(report, cols)
    sides = list(dict.fromkeys(s for s, _ in cols))
    seeds = report.get("seeds")
    same = ("Every mix has the same model, seed, data order, held-out split and augmentation; only the "
            "`[[loss]]` tables differ." if seeds is None else
            f"Every mix is trained once per seed (`train.seed` = {', '.join(map(str, seeds))}: the initial "
            "weights, data order and augmentation); the runs of one seed differ only in their `[[loss]]` "
            "tables, and every run has the same model and held-out split.")
    lines = ["# Loss-mix comparison", "", f"Budget: {report['budget']}. {same}", ""]
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
    if seeds is not None:
        lines += [f"Each cell is the mean over the mix's finished seeds (column `seeds`) [lowest–highest]; "
                  "the bold goes by the mean. Differences smaller than the min–max ranges are within seed "
                  f"noise. `steps` and `min` are per run. grid.png and curves.png show the seed {seeds[0]} runs; "
                  "each seed's figures are in report.json (`mixes.NAME.seeds.S`).", ""]
        lines += [f"- `{name}` seed {s}: {e['status']}: {e.get('error') or 'not trained yet'}"
                  for name, entry in report["mixes"].items() for s, e in entry["seeds"].items()
                  if e["status"] != "done" and entry["seeds_done"]]
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
