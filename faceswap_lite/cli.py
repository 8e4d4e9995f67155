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
