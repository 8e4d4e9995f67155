"""The commands that run the frames engine: ``extract`` and ``convert``."""

from __future__ import annotations

from typing import Any

import click

from ..convert.options import ConvertOptions
from ..errors import FaceswapLiteError
from ..extract.options import ExtractOptions
from .common import (
    identity_threshold_option,
    load_plugins,
    option_from,
    parse_detector_settings,
    plugins_dir_option,
    progress_option,
    run_frames,
)
from .group import main


@main.command("extract")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Face set folder to write (created if needed).")
@option_from(ExtractOptions, "detector", "--detector")
@option_from(ExtractOptions, "detector_settings", "-s", "--detector-setting", multiple=True, metavar="KEY=VALUE")
@option_from(ExtractOptions, "size", "--size")
@option_from(ExtractOptions, "padding", "--padding")
@option_from(ExtractOptions, "centering", "--centering")
@option_from(ExtractOptions, "fill", "--fill", default=",".join(map(str, ExtractOptions.fill)), metavar="R,G,B")
@option_from(ExtractOptions, "every", "--every")
@option_from(ExtractOptions, "min_size", "--min-size")
@option_from(ExtractOptions, "max_faces", "--max-faces")
@option_from(ExtractOptions, "min_score", "--min-score", type=float)
@option_from(ExtractOptions, "max_fit_error", "--max-fit-error")
@option_from(ExtractOptions, "workers", "-j", "--workers", type=int)
@option_from(ExtractOptions, "overwrite", "--overwrite", is_flag=True)
@option_from(ExtractOptions, "identity", "--identity", multiple=True, type=click.Path(), metavar="REF")
@identity_threshold_option
@progress_option
@plugins_dir_option
def extract_cmd(inputs: tuple[str, ...], output: str, detector_settings: tuple[str, ...], fill: str,
                progress: bool | None, **fields: Any) -> None:
    """Find, align and save the faces in photos, folders of photos and videos as a face set.

    INPUTS are photos (jpg png webp bmp tiff), videos (mp4 mov avi mkv webm) and folders (searched
    recursively). Each face becomes OUTPUT/<source>-<hash>_<frame>_<face>.png with its landmarks and
    alignment inside. Re-running into the same OUTPUT skips the sources already done.
    """
    from ..extract import NoFacesFoundError, plan_extract, run_extract

    settings = parse_detector_settings(detector_settings)
    try:
        fill_rgb = tuple(int(v) for v in fill.split(","))
    except ValueError:
        raise FaceswapLiteError(f"--fill {fill!r}: expected R,G,B like 0,0,0") from None
    # ``fields``: the other options, each named as its ExtractOptions field.
    plan = plan_extract(inputs, output, ExtractOptions(detector_settings=settings, fill=fill_rgb, **fields))
    summary = run_frames(
        lambda on_progress: run_extract(plan, progress=on_progress), plan.total_frames, progress,
        lambda _: f"the faces written so far in {output} are whole; run the same command again to go on "
                  "(finished sources are skipped).")
    if summary.no_faces:
        raise NoFacesFoundError(summary.no_faces_reason())



@main.command("convert")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-m", "--model", "model_path", required=True, type=click.Path(),
              help="Run folder (its newest loadable checkpoint) or a checkpoint file.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Folder for the converted files, named after the inputs (created if needed).")
@option_from(ConvertOptions, "to", "--to")
@option_from(ConvertOptions, "faces", "--faces", type=click.Path(file_okay=False))
@option_from(ConvertOptions, "color", "--color")
@option_from(ConvertOptions, "blend", "--blend")
@option_from(ConvertOptions, "erode", "--erode")
@option_from(ConvertOptions, "blur", "--blur")
@option_from(ConvertOptions, "smooth", "--smooth/--no-smooth")
@option_from(ConvertOptions, "frames", "--frames", is_flag=True)
@option_from(ConvertOptions, "watermark", "--watermark", metavar="TEXT")
@option_from(ConvertOptions, "batch_size", "--batch-size")
@option_from(ConvertOptions, "device", "--device")
@option_from(ConvertOptions, "raw_weights", "--raw-weights", is_flag=True)
@option_from(ConvertOptions, "detector", "--detector")
@option_from(ConvertOptions, "detector_settings", "-s", "--detector-setting", multiple=True, metavar="KEY=VALUE")
@option_from(ConvertOptions, "max_fit_error", "--max-fit-error")
@option_from(ConvertOptions, "identity", "--identity", multiple=True, type=click.Path(), metavar="REF")
@identity_threshold_option
@option_from(ConvertOptions, "workers", "-j", "--workers", type=int)
@progress_option
@plugins_dir_option
def convert_cmd(inputs: tuple[str, ...], model_path: str, output: str, detector_settings: tuple[str, ...],
                progress: bool | None, **fields: Any) -> None:
    """Put the trained face into photos, folders and videos: OUTPUT/<input name>, marked as synthetic.

    Faces are found as extract finds them (or taken from --faces), aligned in the model's crop
    geometry, swapped in batches, colour-matched, masked and blended back; nothing outside the mask
    changes. Videos keep their frame count, rate, size and audio.
    """
    from ..convert.pipeline import NothingConvertedError, plan_convert, run_convert

    settings = parse_detector_settings(detector_settings)
    load_plugins(fields["plugins_dirs"])
    # ``fields``: the other options, each named as its ConvertOptions field.
    plan = plan_convert(inputs, output, model_path, ConvertOptions(detector_settings=settings, **fields))
    for warning in plan.warnings:
        click.echo(f"Warning: {warning}", err=True)
    m = plan.model
    click.echo(f"Model {m.path} (step {m.step}): faces to side {m.side.upper()}, {m.resolution} px, crop "
               f"{m.geometry.size} px padding {m.geometry.padding} centering {m.geometry.centering} "
               f"(from the {m.geometry_from}), on {m.device}.")
    summary = run_frames(lambda on_progress: run_convert(plan, progress=on_progress), plan.total_frames, progress,
                         lambda summary: f"files written whole: {', '.join(map(str, summary.written)) or 'none'}; "
                                         "the one in progress was removed.")
    why = summary.nothing_converted()
    if why:
        raise NothingConvertedError(why)
