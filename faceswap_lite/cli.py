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
    for key, n in sorted(result.skipped_files.items()):
        click.echo(f"Warning: skipped {n} unusable face file(s) in side {key}", err=True)
    how = {"done": "finished", "interrupted": "interrupted (checkpoint saved)"}[result.stopped]
    click.echo(f"Training {how} at step {result.step} ({result.faces_per_sec:.1f} faces/s).")
    click.echo(f"  checkpoints: {Path(run_dir) / 'checkpoints' / 'last.pt'}")
    click.echo(f"  previews:    {Path(run_dir) / 'previews' / 'latest.png'}")
    click.echo(f"  TensorBoard: faceswap-lite monitor {run_dir}")
    if result.stopped == "interrupted":
        sys.exit(130)


@main.command("config-reference")
def config_reference_cmd() -> None:
    """Print the config reference (every key, type, default and meaning) as Markdown."""
    from .config import reference_markdown

    click.echo(reference_markdown())


def run() -> None:  # pragma: no cover - console entry used by tests via subprocess
    try:
        main(standalone_mode=True)
    except FaceswapLiteError as exc:
        exc.show()
        sys.exit(exc.exit_code)
