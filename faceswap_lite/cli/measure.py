"""Measuring runs: ``evaluate`` and ``compare``."""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import plugins_dir_option, progress_option, raw_weights_option, set_option
from .group import main


@main.command("evaluate")
@click.argument("run_dir", type=click.Path())
@click.option("-A", "faces_a", type=click.Path(), help="Evaluate side A on all of this face set (default: the run's held-out faces).")
@click.option("-B", "faces_b", type=click.Path(), help="Evaluate side B on all of this face set (default: the run's held-out faces).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="A checkpoint file (default: the newest).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--json", "as_json", is_flag=True, help="Print the panel as one JSON object (metrics per side).")
@raw_weights_option
def evaluate_cmd(run_dir: str, faces_a: str | None, faces_b: str | None, checkpoint: str | None, device: str,
                 as_json: bool, raw_weights: bool) -> None:
    """The metric panel of RUN_DIR on faces it did not train on.

    Masked PSNR and SSIM, MS-SSIM, GMSD and LPIPS (when its weights are on the machine) of each side's
    reconstructions, inside the face mask; for a two-side run also the swap's identity (dlib descriptor
    distance of A->B faces to B's and A's centre, share called B at 0.6) and expression kept (landmark
    distance between a face and its swap, in inter-ocular distances).
    """
    import json

    from ..evaluate.panel import evaluate_run

    panel = evaluate_run(run_dir, {"a": faces_a, "b": faces_b}, checkpoint, device, raw_weights)
    if as_json:
        click.echo(json.dumps(panel.to_json(), indent=1))
        return
    click.echo(f"{run_dir} at step {panel.step}; faces: " +
               "; ".join(f"{s.upper()} {f['count']} {f['source']}" for s, f in panel.faces.items()))
    click.echo(panel.table())
    for note in panel.notes:
        click.echo(f"Note: {note}")


@main.command("compare")
@click.option("-A", "faces_a", required=True, type=click.Path(), help="Face set of identity A.")
@click.option("-B", "faces_b", type=click.Path(), help="Face set of identity B: every mix trains a swap model.")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for one run per mix (DIR/NAME) and the report.")
@click.option("--mix", "mixes", multiple=True, required=True, metavar="NAME=SPEC",
              help="A loss mix: NAME=config.toml, NAME=recipe, or NAME=ssim:1,mae:1 (settings as lpips:0.1:net=vgg); "
                   "repeatable.")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Base config for every mix (its [[loss]] tables are replaced by each mix's).")
@set_option("Override a base config key for every mix, e.g. --set train.steps=300; repeatable.")
@click.option("--minutes", type=float, default=None,
              help="Budget: minutes of wall time per mix (capped by train.steps) instead of train.steps alone.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1),
              help="Mixes trained at a time, each in its own process (mix k on GPU k mod the GPU count).")
@click.option("--seeds", default=None, metavar="S1,S2,...",
              help="Train every mix once per train.seed (e.g. 0,1,2) into DIR/NAME/seed-S and report each metric "
                   "as mean [min-max] over the seeds (default: one run per mix with the config's train.seed).")
@progress_option
@plugins_dir_option
def compare_cmd(faces_a: str, faces_b: str | None, out: str, mixes: tuple[str, ...], config_path: str | None,
                overrides: tuple[str, ...], minutes: float | None, jobs: int, seeds: str | None,
                progress: bool | None, plugins_dirs: tuple[str, ...]) -> None:
    """Train one run per loss mix with everything else equal, then score them all on the same held-out faces.

    Writes DIR/report.md (table, best per column), report.json, grid.png (the same faces through every
    mix), curves.png (validation curves), and a run folder per mix (faceswap-lite monitor DIR overlays
    them). With --seeds, one run per mix and seed, and the seed-to-seed range in the report. Run the
    same command again to resume an interrupted compare.
    """
    import shlex

    from ..evaluate.compare import plan_compare, run_compare, unfinished

    command = shlex.join(["faceswap-lite", "compare"] + sys.argv[2:]) if sys.argv[1:2] == ["compare"] else ""
    plan = plan_compare({"a": faces_a, "b": faces_b}, out, mixes, config_path, overrides, plugins_dirs,
                        minutes, jobs, command, seeds)
    todo = [r.key for r in unfinished(plan)]
    count = f"{len(plan.mixes)} mix{'es' if len(plan.mixes) != 1 else ''}"
    if plan.seeds is not None:
        count += f" × {len(plan.seeds)} seed{'s' if len(plan.seeds) != 1 else ''}"
    click.echo(f"Comparing {count} ({plan.budget()}); to train: {', '.join(todo) or 'none'}.")

    def on_mix(name: str, state: Any) -> None:
        what = f"failed: {state.error}" if state.status == "failed" else f"done at step {state.step}"
        click.echo(f"  {name}: {what} ({state.seconds / 60:.1f} min)")

    try:
        report = run_compare(plan, progress, on_mix)
    except KeyboardInterrupt:
        click.echo(f"Interrupted: the finished runs and checkpoints are kept in {out}; run the same command "
                   "again to resume.", err=True)
        sys.exit(130)
    failed = [n for n, e in report["mixes"].items() if e["status"] != "done"]
    click.echo(f"Report: {plan.out / 'report.md'} (also report.json, grid.png, curves.png)")
    if failed:
        click.echo(f"Warning: {len(failed)} mix(es) failed: {', '.join(failed)} (see the report)", err=True)
