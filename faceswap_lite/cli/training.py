"""Training and watching a run: ``train``, ``preview``, ``monitor`` and ``demo``."""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import load_plugins, plugins_dir_option, progress_option, raw_weights_option, set_option
from .group import main


@main.command("train")
@click.option("-A", "faces_a", required=True, type=click.Path(), help="Face set of identity A (from extract).")
@click.option("-B", "faces_b", type=click.Path(), help="Face set of identity B: trains a swap model.")
@click.option("-o", "--output", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: checkpoints, previews, TensorBoard logs, resolved config.")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML config (default: the run folder's config.toml when resuming, else the defaults).")
@set_option()
@click.option("--resume", is_flag=True, default=None,
              help="Require a checkpoint to resume from (by default a run folder with one is resumed).")
@click.option("--lr-find", is_flag=True,
              help="Sweep the learning rate over train.lr_find_steps real steps of this new run, write "
                   "RUN/lr_find.csv and lr_find.png, print the suggestions and stop (--set train.lr=auto "
                   "sweeps, then trains with the suggestion).")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many minutes of wall time, the last step evaluated, previewed and saved.")
@click.option("--until", type=click.IntRange(min=1), default=None,
              help="Stop at this step (at most train.steps), the step evaluated, previewed and saved.")
@progress_option
@plugins_dir_option
def train_cmd(faces_a: str, faces_b: str | None, run_dir: str, config_path: str | None, overrides: tuple[str, ...],
              resume: bool | None, lr_find: bool, minutes: float | None, until: int | None, progress: bool | None,
              plugins_dirs: tuple[str, ...]) -> None:
    """Train the autoencoder on face sets A (and B) into a run folder; resumes an existing run."""
    from ..config import load_config
    from ..runfolder import RunFolder
    from ..train.trainer import train

    folder = RunFolder(run_dir)
    saved = folder.config
    if config_path is None and saved.is_file():
        config_path = str(saved)
    auto_lr = "train.lr=auto" in [o.replace(" ", "") for o in overrides]
    overrides = tuple(o for o in overrides if o.replace(" ", "") != "train.lr=auto")
    cfg = load_config(config_path, overrides)
    load_plugins(list(cfg.plugins.dirs) + list(plugins_dirs))
    faces = {"a": faces_a} if faces_b is None else {"a": faces_a, "b": faces_b}
    if lr_find or auto_lr:
        cfg = _sweep_lr(cfg, faces, run_dir, plugins_dirs, then_train=auto_lr and not lr_find)
        if cfg is None:
            return
    result = train(cfg, faces, run_dir, plugins_dirs=plugins_dirs, resume=resume, progress=progress,
                   max_seconds=None if minutes is None else 60 * minutes, until=until)
    if not result.is_main:
        return
    if result.stopped == "already trained":
        click.echo(f"Nothing to train: run {run_dir} is already at step {result.step} (train.steps = "
                   f"{cfg.train.steps}); raise train.steps to train longer.")
        return
    for key, n in sorted(result.skipped_files.items()):
        side, reason = key.split(":", 1)
        click.echo(f"Warning: side {side}: skipped {n} face file(s): {reason}", err=True)
    how = {"time budget": f"stopped at the --minutes {minutes:g} budget" if minutes else "stopped"}.get(
        result.stopped, "finished")
    if result.stopped == "interrupted":
        how = "interrupted (checkpoint saved)" if result.step > result.start_step else "interrupted before a step"
    click.echo(f"Training {how} at step {result.step} ({result.faces_per_sec:.1f} faces/s).")
    click.echo(f"  checkpoints: {folder.last}")
    click.echo(f"  previews:    {folder.latest_preview}")
    click.echo(f"  TensorBoard: faceswap-lite monitor {run_dir}")
    if result.stopped == "interrupted":
        sys.exit(130)


def _sweep_lr(cfg: Any, faces: dict[str, str], run_dir: str, plugins_dirs: tuple[str, ...],
              then_train: bool) -> Any:
    """``--lr-find`` (print the sweep's suggestions; returns None: nothing more to do) or
    ``train.lr = auto`` (returns the config with the suggested rate, said in the log)."""
    from ..config import from_dict
    from ..train.lr_find import LRFindError, lr_find

    sweep = lr_find(cfg, faces, run_dir, plugins_dirs)
    def rate(v: float | None) -> str:
        return "none" if v is None else f"{v:.2e}"

    click.echo(f"LR sweep: {len(sweep.lrs)} steps from {sweep.lrs[0]:.1e} to {sweep.lrs[-1]:.1e} ({sweep.stopped}); "
               f"suggested: {rate(sweep.at_minimum)} (the smoothed minimum / 10), {rate(sweep.steepest)} "
               f"(the steepest descent). Written: {run_dir}/lr_find.csv, lr_find.png")
    if not then_train:
        return None
    if sweep.suggestion is None:
        raise LRFindError("train.lr = auto: the sweep found no minimum (see lr_find.png); set train.lr yourself")
    click.echo(f"train.lr = auto: training with train.lr = {sweep.suggestion:.3g} (recorded in the run's config.toml)")
    data = cfg.to_dict()
    data["train"] = {**data["train"], "lr": float(f"{sweep.suggestion:.3g}")}
    return from_dict(data)


@main.command("preview")
@click.argument("run_dir", type=click.Path())
@click.option("-A", "faces_a", type=click.Path(), help="Faces for side A (default: the set it trained on).")
@click.option("-B", "faces_b", type=click.Path(), help="Faces for side B (default: the set it trained on).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="A checkpoint file (default: the newest).")
@click.option("-n", "count", default=6, show_default=True, type=click.IntRange(1, 64), help="Faces per side.")
@click.option("-o", "--output", "out", default="preview.png", show_default=True, type=click.Path(dir_okay=False),
              help="Image to write: .png, .jpg or .webp (its folder is created if needed).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@raw_weights_option
def preview_cmd(run_dir: str, faces_a: str | None, faces_b: str | None, checkpoint: str | None, count: int,
                out: str, device: str, raw_weights: bool) -> None:
    """Render RUN_DIR's model on faces as a grid: A, A->A, A->B (and B, B->B, B->A), plus the
    predicted mask of each swap (A->B MASK, B->A MASK) when the model learns a mask."""
    from ..train.preview import preview_run

    shown = preview_run(run_dir, {"a": faces_a, "b": faces_b}, out, checkpoint, count, device, raw_weights)
    for line in shown.warnings():
        click.echo(f"Warning: {line}", err=True)
    click.echo(f"Wrote {shown.path}: sides {', '.join(s.upper() for s in shown.sides)}, "
               f"checkpoint step {shown.step}.")


@main.command("monitor")
@click.argument("run_dir", type=click.Path())
@click.option("--port", default=6006, show_default=True, type=click.IntRange(0, 65535),
              help="Port on localhost (0 = any free port).")
def monitor_cmd(run_dir: str, port: int) -> None:
    """Serve TensorBoard for RUN_DIR's loss curves and previews on localhost until Ctrl-C."""
    import time

    from ..monitor import free_port, start_tensorboard

    url = start_tensorboard(run_dir, free_port() if port == 0 else port)
    click.echo(f"TensorBoard for {run_dir} at {url}  (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@main.command("demo")
@click.option("-o", "--output", "out", default="faceswap-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the clip, the face set and the run.")
@click.option("--steps", default=None, type=click.IntRange(1), help="Training steps [default: the recipe's, 300].")
@click.option("--frames", default=48, show_default=True, type=click.IntRange(4, 1000), help="Frames in the sample clip.")
@set_option("Override a config key; repeatable.")
@progress_option
def demo_cmd(out: str, steps: int | None, frames: int, overrides: tuple[str, ...], progress: bool | None) -> None:
    """Extract the sample faces shipped in the package and train a small model on CPU (a few minutes)."""
    from ..demo import demo_config, demo_lock

    cfg = demo_config(overrides, steps)  # a --set typo stops here, before the clip is made
    with demo_lock(out):
        _run_demo(out, frames, cfg, progress)


def _run_demo(out: str, frames: int, cfg: Any, progress: bool | None) -> None:
    from ..demo import convert_demo, prepare_demo
    from ..runfolder import RunFolder
    from ..train.trainer import train

    click.echo("1/3 Extracting faces from a clip made of the sample photo (public domain, NASA)...")
    demo = prepare_demo(out, frames=frames)
    for line in demo.extract_lines:
        click.echo("    " + line)
    click.echo(f"2/3 Training the cpu-quick recipe for {cfg.train.steps} steps on {demo.faces_written} faces...")
    result = train(cfg, {"a": demo.faces}, demo.run, progress=progress)
    if result.stopped == "already trained":
        click.echo(f"Already trained: {demo.run} is at step {result.step} (train.steps); converting with it.")
    else:
        click.echo(f"Done: step {result.step}{_demo_figures(result.metrics)}, {result.faces_per_sec:.0f} faces/s.")
    click.echo(f"  faces:       {demo.faces}")
    folder = RunFolder(demo.run)
    click.echo(f"  previews:    {folder.latest_preview}  (columns: face, reconstruction)")
    click.echo(f"  checkpoints: {folder.checkpoints}")
    click.echo(f"  TensorBoard: faceswap-lite monitor {demo.run}")
    click.echo(f"  preview:     faceswap-lite preview {demo.run} -o preview.png")
    click.echo("3/3 Converting the clip through the trained model (a reconstruction: one identity)...")
    video, lines = convert_demo(demo)
    for line in lines:
        click.echo("    " + line)
    click.echo(f"  video:       {video}  (marked as synthetic; source: {demo.out / 'sample_clip.avi'})")


def _demo_figures(metrics: dict[str, float]) -> str:
    """``, loss 0.1234, validation PSNR 20.1 dB``: the figures the run has (none is shown as nan)."""
    parts = []
    if "loss/total" in metrics:
        parts.append(f"loss {metrics['loss/total']:.4f}")
    if "val/a/psnr" in metrics:
        parts.append(f"validation PSNR {metrics['val/a/psnr']:.1f} dB")
    return "".join(", " + p for p in parts)
