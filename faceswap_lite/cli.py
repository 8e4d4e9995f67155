"""The ``faceswap-lite`` command: one click group, one command per verb.

This is the only module that prints to the console or exits; everything else logs or raises.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .errors import FaceswapLiteError

log = logging.getLogger("faceswap_lite")


def plugins_dir_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--plugins-dir", "plugins_dirs", multiple=True, type=click.Path(file_okay=False),
        help="Folder of user plugin files (*.py) to load; repeatable.",
    )(f)


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("faceswap_lite").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def _load_plugins(dirs: tuple[str, ...] | list[str]) -> None:
    from .registry import load_plugins

    for failure in load_plugins(dirs):
        click.echo(f"Warning: plugin {failure.source} failed to load: {failure.error}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="faceswap-lite")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def main(verbose: int) -> None:
    """Train face autoencoders with a weighted mix of pluggable losses.

    \b
    extract   photos and videos -> aligned face set
    train     face set(s) -> run folder (checkpoints, previews, TensorBoard)
    preview   run folder + faces -> preview grid
    monitor   TensorBoard for a run folder
    losses    list the available losses and their settings
    """
    _setup_logging(verbose)


@main.command("losses")
@plugins_dir_option
def losses_cmd(plugins_dirs: tuple[str, ...]) -> None:
    """List every registered loss with its settings, defaults and a one-line description."""
    from .losses.mix import describe_loss
    from .registry import LOSSES, first_doc_line

    _load_plugins(plugins_dirs)
    for name, cls in LOSSES.items():
        kind = getattr(cls, "output", "map")
        kind = "per-pixel map" if kind == "map" else "per-item"
        click.echo(f"{name}  [{kind}]  {first_doc_line(cls)}")
        for key, default in describe_loss(name):
            click.echo(f"    {key} = {default}")
    click.echo(f"\n{len(LOSSES)} losses. Use one in a config as: [[loss]] name = \"ssim\" weight = 1.0")


@main.command("train")
@click.option("-A", "faces_a", required=True, type=click.Path(), help="Face set of identity A (from extract).")
@click.option("-B", "faces_b", type=click.Path(), help="Face set of identity B: trains a swap model.")
@click.option("-o", "--output", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: checkpoints, previews, TensorBoard logs, resolved config.")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML config (default: the run folder's config.toml when resuming, else the defaults).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set train.lr=1e-4 --set loss.0.weight=0.5; repeatable.")
@click.option("--resume", is_flag=True, default=None,
              help="Require a checkpoint to resume from (by default a run folder with one is resumed).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
@plugins_dir_option
def train_cmd(faces_a: str, faces_b: str | None, run_dir: str, config_path: str | None, overrides: tuple[str, ...],
              resume: bool | None, progress: bool | None, plugins_dirs: tuple[str, ...]) -> None:
    """Train the autoencoder on face sets A (and B) into a run folder; resumes an existing run."""
    from pathlib import Path

    from .config import load_config
    from .train.trainer import train

    saved = Path(run_dir) / "config.toml"
    if config_path is None and saved.is_file():
        config_path = str(saved)
    cfg = load_config(config_path, overrides)
    _load_plugins(list(cfg.plugins.dirs) + list(plugins_dirs))
    faces = {"a": faces_a} if faces_b is None else {"a": faces_a, "b": faces_b}
    result = train(cfg, faces, run_dir, plugins_dirs=plugins_dirs, resume=resume, progress=progress)
    if not result.is_main:
        return
    for key, n in sorted(result.skipped_files.items()):
        side, reason = key.split(":", 1)
        click.echo(f"Warning: side {side}: skipped {n} face file(s): {reason}", err=True)
    how = "finished"
    if result.stopped == "interrupted":
        how = "interrupted (checkpoint saved)" if result.step > result.start_step else "interrupted before a step"
    click.echo(f"Training {how} at step {result.step} ({result.faces_per_sec:.1f} faces/s).")
    click.echo(f"  checkpoints: {Path(run_dir) / 'checkpoints' / 'last.pt'}")
    click.echo(f"  previews:    {Path(run_dir) / 'previews' / 'latest.png'}")
    click.echo(f"  TensorBoard: faceswap-lite monitor {run_dir}")
    if result.stopped == "interrupted":
        sys.exit(130)


@main.command("preview")
@click.argument("run_dir", type=click.Path())
@click.option("-A", "faces_a", type=click.Path(), help="Faces for side A (default: the set it trained on).")
@click.option("-B", "faces_b", type=click.Path(), help="Faces for side B (default: the set it trained on).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="A checkpoint file (default: the newest).")
@click.option("-n", "count", default=6, show_default=True, type=click.IntRange(1, 64), help="Faces per side.")
@click.option("-o", "--output", "out", default="preview.png", show_default=True, type=click.Path(dir_okay=False),
              help="PNG to write.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
def preview_cmd(run_dir: str, faces_a: str | None, faces_b: str | None, checkpoint: str | None, count: int,
                out: str, device: str) -> None:
    """Render RUN_DIR's model on faces as a grid: A, A->A, A->B (and B, B->B, B->A)."""
    from .train.preview import preview_run

    path, step, sides = preview_run(run_dir, {"a": faces_a, "b": faces_b}, out, checkpoint, count, device)
    click.echo(f"Wrote {path}: sides {', '.join(s.upper() for s in sides)}, checkpoint step {step}.")


@main.command("monitor")
@click.argument("run_dir", type=click.Path())
@click.option("--port", default=6006, show_default=True, help="Port on localhost (0 = any free port).")
def monitor_cmd(run_dir: str, port: int) -> None:
    """Serve TensorBoard for RUN_DIR's loss curves and previews on localhost until Ctrl-C."""
    import time

    from .monitor import free_port, start_tensorboard

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
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key; repeatable.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
def demo_cmd(out: str, steps: int | None, frames: int, overrides: tuple[str, ...], progress: bool | None) -> None:
    """Extract the sample faces shipped in the package and train a small model on CPU (a few minutes)."""
    from pathlib import Path

    from .config import load_config, recipe_path
    from .demo import prepare_demo
    from .train.trainer import train

    click.echo("1/2 Extracting faces from a clip made of the sample photo (public domain, NASA)...")
    demo = prepare_demo(out, frames=frames)
    for line in demo.extract_lines:
        click.echo("    " + line)
    extra = list(overrides) + ([f"train.steps={steps}"] if steps else [])
    cfg = load_config(recipe_path("cpu-quick"), extra)
    click.echo(f"2/2 Training the cpu-quick recipe for {cfg.train.steps} steps on {demo.faces_written} faces...")
    result = train(cfg, {"a": demo.faces}, demo.run, progress=progress)
    m = result.metrics
    click.echo(f"Done: step {result.step}, loss {m.get('loss/total', float('nan')):.4f}, "
               f"validation PSNR {m.get('val/a/psnr', float('nan')):.1f} dB, {result.faces_per_sec:.0f} faces/s.")
    click.echo(f"  faces:       {demo.faces}")
    click.echo(f"  previews:    {Path(demo.run) / 'previews' / 'latest.png'}  (columns: face, reconstruction)")
    click.echo(f"  checkpoints: {Path(demo.run) / 'checkpoints'}")
    click.echo(f"  TensorBoard: faceswap-lite monitor {demo.run}")
    click.echo(f"  preview:     faceswap-lite preview {demo.run} -o preview.png")


@main.command("config-reference")
@click.option("--toml", "as_toml", is_flag=True, help="Print the default config as commented TOML instead.")
def config_reference_cmd(as_toml: bool) -> None:
    """Print the config reference (every key, type, default and meaning) as Markdown."""
    from .config import commented_toml, reference_markdown

    click.echo(commented_toml() if as_toml else reference_markdown())


@main.command("extract")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Face set folder to write (created if needed).")
@click.option("--detector", default="dlib-hog", show_default=True,
              help="Face detector plugin: dlib-hog (fast) or dlib-cnn (slow, more robust), or a user plugin.")
@click.option("-s", "--detector-setting", "detector_settings", multiple=True, metavar="KEY=VALUE",
              help="A detector setting, e.g. -s upsample=2 -s threshold=0.2; repeatable.")
@click.option("--size", default=256, show_default=True, help="Side of the square face crop in pixels.")
@click.option("--padding", default=0.4, show_default=True,
              help="Margin around the eyebrows-to-mouth box, as a fraction of it (more shows more head).")
@click.option("--centering", default=0.05, show_default=True,
              help="Move the crop up by this fraction of the eyebrows-to-mouth box (shows the forehead).")
@click.option("--fill", default="0,0,0", show_default=True, metavar="R,G,B",
              help="Colour of crop pixels outside the source image (recorded as invalid for training).")
@click.option("--every", default=1, show_default=True, help="Use every Nth video frame.")
@click.option("--min-size", default=0.0, show_default=True,
              help="Skip faces whose detection box is smaller than this many pixels (source image).")
@click.option("--max-faces", default=0, show_default=True,
              help="Keep at most this many faces per frame, the largest (0: no limit).")
@click.option("--min-score", type=float, default=None, help="Skip faces the detector scores below this.")
@click.option("--max-fit-error", default=0.1, show_default=True,
              help="Skip faces whose landmarks fit the mean face worse than this (RMS, in face-box units).")
@click.option("-j", "--workers", type=int, default=None, help="Worker processes [default: CPU count].")
@click.option("--overwrite", is_flag=True, help="Redo sources already extracted into the output folder.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
@plugins_dir_option
def extract_cmd(inputs: tuple[str, ...], output: str, detector: str, detector_settings: tuple[str, ...],
                size: int, padding: float, centering: float, fill: str, every: int, min_size: float,
                max_faces: int, min_score: float | None, max_fit_error: float, workers: int | None,
                overwrite: bool, progress: bool | None, plugins_dirs: tuple[str, ...]) -> None:
    """Find, align and save the faces in photos, folders of photos and videos as a face set.

    INPUTS are photos (jpg png webp bmp tiff), videos (mp4 mov avi mkv webm) and folders (searched
    recursively). Each face becomes OUTPUT/<source>-<hash>_<frame>_<face>.png with its landmarks and
    alignment inside. Re-running into the same OUTPUT skips the sources already done.
    """
    import json

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from .extract import ExtractOptions, NoFacesFoundError, plan_extract, run_extract

    settings = {}
    for item in detector_settings:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise FaceswapLiteError(f"--detector-setting {item!r}: expected KEY=VALUE, e.g. upsample=2")
        try:
            settings[key.strip()] = json.loads(raw)
        except ValueError:
            settings[key.strip()] = raw.strip()
    try:
        fill_rgb = tuple(int(v) for v in fill.split(","))
    except ValueError:
        raise FaceswapLiteError(f"--fill {fill!r}: expected R,G,B like 0,0,0") from None
    options = ExtractOptions(
        detector=detector, detector_settings=settings, size=size, padding=padding, centering=centering,
        fill=fill_rgb, every=every, min_size=min_size, max_faces=max_faces, min_score=min_score,
        max_fit_error=max_fit_error, workers=workers,
        overwrite=overwrite, plugins_dirs=plugins_dirs,
    )
    plan = plan_extract(inputs, output, options)
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=plan.total_frames, unit="frame", disable=not show, dynamic_ncols=True, file=sys.stderr)
    faces = 0

    def on_progress(frames: int, new_faces: int) -> None:
        nonlocal faces
        faces += new_faces
        bar.update(frames)
        bar.set_postfix(faces=faces, refresh=False)

    try:
        with logging_redirect_tqdm():
            summary = run_extract(plan, progress=on_progress)
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"Interrupted: the faces written so far in {output} are whole; run the same command "
                   "again to go on (finished sources are skipped).", err=True)
        sys.exit(130)
    bar.close()
    for line in summary.lines():
        click.echo(line)
    if summary.no_faces:
        raise NoFacesFoundError(
            f"no face found in {summary.sources} source(s); try a larger detector upsample "
            f"(-s upsample=2), --detector dlib-cnn, or lower --min-size/--min-score"
        )


def run() -> None:  # pragma: no cover - console entry used by tests via subprocess
    try:
        main(standalone_mode=True)
    except FaceswapLiteError as exc:
        exc.show()
        sys.exit(exc.exit_code)
