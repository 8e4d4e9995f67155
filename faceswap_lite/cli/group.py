"""The ``faceswap-lite`` click group; each command module adds its commands to it."""

from __future__ import annotations

import click

from .. import __version__
from .common import setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="faceswap-lite")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def main(verbose: int) -> None:
    """Train face autoencoders with a weighted mix of pluggable losses.

    \b
    extract   photos and videos -> aligned face set
    sort      rank a face set by blur, identity, pose, size, score; or group it by person
    faceset   what a face set holds, and how to clean it
    train     face set(s) -> run folder (checkpoints, previews, TensorBoard)
    preview   run folder + faces -> preview grid
    convert   photos / videos + run folder -> the same with the trained face blended in
    monitor   TensorBoard for a run folder
    evaluate  run folder -> metric panel on held-out faces (image quality, swap identity)
    compare   face set(s) + loss mixes -> one run per mix, one report
    plugins   list the losses, models and detectors with their settings (losses: the losses alone)
    demo      sample faces shipped in the package -> a small model trained on CPU (a few minutes)
    config-reference  every config key with its type, default and meaning (Markdown, or --toml)
    """
    setup_logging(verbose)
