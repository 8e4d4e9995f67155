"""The ``faceswap-lite`` command: one click group, one command per verb.

This is the only module that prints to the console or exits; everything else logs or raises.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from . import __version__
from .convert.options import ConvertOptions
from .errors import FaceswapLiteError
from .extract.options import ExtractOptions
from .identity import DEFAULT_THRESHOLD as DEFAULT_IDENTITY_THRESHOLD

log = logging.getLogger("faceswap_lite")


# Options several commands share, written once (as pip-tools' scripts/options.py does).
plugins_dir_option = click.option(
    "--plugins-dir", "plugins_dirs", multiple=True, type=click.Path(file_okay=False),
    help="Folder of user plugin files (*.py) to load; repeatable.")
progress_option = click.option("--progress/--no-progress", default=None,
                               help="Progress bar (default: when on a terminal).")
identity_threshold_option = click.option(
    "--identity-threshold", default=DEFAULT_IDENTITY_THRESHOLD, show_default=True,
    help="Largest descriptor distance at which two faces count as one person (a face and its nearest "
         "--identity reference, or two faces of the set).")


def option_from(options: type, name: str, *decls: str, **overrides: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The option for the field ``name`` of the options dataclass ``options``, which declares it once
    (:func:`faceswap_lite.settings.setting`): its default, its doc as the help, its choices as a
    click.Choice; the command gets it as ``name``. ``overrides``: other click.option arguments."""
    f = next(f for f in dataclasses.fields(options) if f.name == name)
    kwargs: dict[str, Any] = {"help": f.metadata["doc"], "show_default": True}
    if f.default is not dataclasses.MISSING:
        kwargs["default"] = f.default
    if "choices" in f.metadata:
        kwargs["type"] = click.Choice(list(f.metadata["choices"]))
    return click.option(*decls, name, **{**kwargs, **overrides})


def set_option(help_text: str = "Override a config key, e.g. --set train.lr=1e-4 --set loss.0.weight=0.5; "
                                "repeatable.") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--set KEY=VALUE`` (repeatable) into the ``overrides`` argument."""
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=help_text)


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("faceswap_lite").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def _load_plugins(dirs: tuple[str, ...] | list[str]) -> None:
    from .registry import load_plugins

    for failure in load_plugins(dirs):
        click.echo(f"Warning: plugin {failure.source} failed to load: {failure.error}", err=True)


def _detector_settings(items: tuple[str, ...]) -> dict[str, Any]:
    """``-s KEY=VALUE`` detector settings, parsed as ``--set`` values are (TOML)."""
    from .config import parse_override

    settings = {}
    for item in items:
        (key, *rest), value = parse_override(item, "--detector-setting", "upsample=2")
        if rest:
            raise FaceswapLiteError(f"--detector-setting {item!r}: a detector setting is one name, like upsample")
        settings[key.strip()] = value
    return settings


def _frame_bar(total: int, progress: bool | None) -> tuple[Any, Callable[[int, int], None]]:
    """A frames progress bar (on a terminal, unless --progress/--no-progress says) and the
    ``progress(frames, new_faces)`` callback that advances it."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, unit="frame", disable=not show, dynamic_ncols=True, file=sys.stderr)
    faces = 0

    def on_progress(frames: int, new_faces: int) -> None:
        nonlocal faces
        faces += new_faces
        bar.update(frames)
        bar.set_postfix(faces=faces, refresh=False)

    return bar, on_progress


def _interrupted(kept: str) -> NoReturn:
    """Ctrl-C, said one way by extract, convert and sort: what is kept, on one line; exit 130 (128 + SIGINT)."""
    click.echo(f"Interrupted: {kept}", err=True)
    sys.exit(130)


def _run_frames(run: Callable[[Callable[[int, int], None]], Any], total: int, progress: bool | None,
                kept: Callable[[Any], str]) -> Any:
    """Run an extract or convert (``run(on_progress)``) behind a frames progress bar, print its
    summary and return it. Ctrl-C stops it the engine's one way (:func:`faceswap_lite.frames.running`):
    then one line says ``kept(summary)`` instead (the summary of what was done; None when Ctrl-C
    came as extract's workers started or stopped) and the exit status is 130."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from .frames import Interrupted

    bar, on_progress = _frame_bar(total, progress)
    try:
        with logging_redirect_tqdm():
            summary = run(on_progress)
    except Interrupted as stop:
        summary = stop.summary
    except KeyboardInterrupt:
        summary = None
    finally:
        bar.close()
    if summary is None or summary.interrupted:
        _interrupted(kept(summary))
    for line in summary.lines():
        click.echo(line)
    return summary


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
    _setup_logging(verbose)


def _echo_plugins(kinds: list[str], plugins_dirs: tuple[str, ...]) -> None:
    from .registry import REGISTRIES

    _load_plugins(plugins_dirs)
    for kind in kinds:
        registry = REGISTRIES[kind]
        click.echo(f"{kind}:")
        for name in registry.names():
            info = registry.describe(name)
            facts = "".join(f"  [{v}]" for v in info.facts.values())
            click.echo(f"  {name}{facts}  {info.doc}  ({info.source})")
            for key, default in info.settings.items():
                click.echo(f"      {key} = {default}")
        click.echo(f"  {len(registry)} {kind}.")
    if kinds == ["losses"]:
        click.echo('Use one in a config as: [[loss]] name = "ssim" weight = 1.0')


@main.command("plugins")
@click.argument("kinds", nargs=-1, type=click.Choice(["losses", "models", "detectors"]))
@plugins_dir_option
def plugins_cmd(kinds: tuple[str, ...], plugins_dirs: tuple[str, ...]) -> None:
    """List the plugins (losses, models, detectors: all by default) with settings, defaults and origin."""
    _echo_plugins(list(kinds) or ["losses", "models", "detectors"], plugins_dirs)


@main.command("losses")
@plugins_dir_option
def losses_cmd(plugins_dirs: tuple[str, ...]) -> None:
    """List every registered loss with its settings (a shortcut for ``plugins losses``)."""
    _echo_plugins(["losses"], plugins_dirs)


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
@progress_option
@plugins_dir_option
def train_cmd(faces_a: str, faces_b: str | None, run_dir: str, config_path: str | None, overrides: tuple[str, ...],
              resume: bool | None, progress: bool | None, plugins_dirs: tuple[str, ...]) -> None:
    """Train the autoencoder on face sets A (and B) into a run folder; resumes an existing run."""
    from .config import load_config
    from .runfolder import RunFolder
    from .train.trainer import train

    folder = RunFolder(run_dir)
    saved = folder.config
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
    click.echo(f"  checkpoints: {folder.last}")
    click.echo(f"  previews:    {folder.latest_preview}")
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
    """Render RUN_DIR's model on faces as a grid: A, A->A, A->B (and B, B->B, B->A), plus the
    predicted mask of each swap (A->B MASK, B->A MASK) when the model learns a mask."""
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
@set_option("Override a config key; repeatable.")
@progress_option
def demo_cmd(out: str, steps: int | None, frames: int, overrides: tuple[str, ...], progress: bool | None) -> None:
    """Extract the sample faces shipped in the package and train a small model on CPU (a few minutes)."""
    from .config import load_config, recipe_path
    from .demo import convert_demo, prepare_demo
    from .runfolder import RunFolder
    from .train.trainer import train

    click.echo("1/3 Extracting faces from a clip made of the sample photo (public domain, NASA)...")
    demo = prepare_demo(out, frames=frames)
    for line in demo.extract_lines:
        click.echo("    " + line)
    extra = list(overrides) + ([f"train.steps={steps}"] if steps else [])
    cfg = load_config(recipe_path("cpu-quick"), extra)
    click.echo(f"2/3 Training the cpu-quick recipe for {cfg.train.steps} steps on {demo.faces_written} faces...")
    result = train(cfg, {"a": demo.faces}, demo.run, progress=progress)
    m = result.metrics
    click.echo(f"Done: step {result.step}, loss {m.get('loss/total', float('nan')):.4f}, "
               f"validation PSNR {m.get('val/a/psnr', float('nan')):.1f} dB, {result.faces_per_sec:.0f} faces/s.")
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
    from .extract import NoFacesFoundError, plan_extract, run_extract

    settings = _detector_settings(detector_settings)
    try:
        fill_rgb = tuple(int(v) for v in fill.split(","))
    except ValueError:
        raise FaceswapLiteError(f"--fill {fill!r}: expected R,G,B like 0,0,0") from None
    # ``fields``: the other options, each named as its ExtractOptions field.
    plan = plan_extract(inputs, output, ExtractOptions(detector_settings=settings, fill=fill_rgb, **fields))
    summary = _run_frames(
        lambda on_progress: run_extract(plan, progress=on_progress), plan.total_frames, progress,
        lambda _: f"the faces written so far in {output} are whole; run the same command again to go on "
                  "(finished sources are skipped).")
    if summary.no_faces:
        raise NoFacesFoundError(
            f"no face found in {summary.sources} source(s); try a larger detector upsample "
            f"(-s upsample=2), --detector dlib-cnn, or lower --min-size/--min-score"
        )



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
    from .convert.pipeline import plan_convert, run_convert

    settings = _detector_settings(detector_settings)
    _load_plugins(fields["plugins_dirs"])
    # ``fields``: the other options, each named as its ConvertOptions field.
    plan = plan_convert(inputs, output, model_path, ConvertOptions(detector_settings=settings, **fields))
    m = plan.model
    click.echo(f"Model {m.path} (step {m.step}): faces to side {m.side.upper()}, {m.resolution} px, crop "
               f"{m.geometry.size} px padding {m.geometry.padding} centering {m.geometry.centering} "
               f"(from the {m.geometry_from}), on {m.device}.")
    _run_frames(lambda on_progress: run_convert(plan, progress=on_progress), plan.total_frames, progress,
                lambda summary: f"files written whole: {', '.join(map(str, summary.written)) or 'none'}; "
                                "the one in progress was removed.")


@main.command("sort")
@click.argument("faceset", type=click.Path())
@click.option("--by", "by", required=True, metavar="KEY",
              help="blur, identity, yaw, pitch, roll, size, score or face (see docs/extract.md).")
@click.option("-o", "--output", type=click.Path(file_okay=False),
              help="New or empty folder for the ranked copies [default: FACESET_by_KEY beside it].")
@click.option("--move", is_flag=True, help="Move the faces into OUTPUT instead of copying (nothing is deleted).")
@click.option("--bins", default=0, type=int, help="Split the ranked faces into this many folders.")
@click.option("--dry-run", is_flag=True, help="Print the order and each face's value; write nothing.")
@click.option("--identity", "identity_refs", multiple=True, type=click.Path(), metavar="REF",
              help="For --by identity: rank by distance to this person (photo or face set); repeatable.")
@identity_threshold_option
def sort_cmd(faceset: str, by: str, output: str | None, move: bool, bins: int, dry_run: bool,
             identity_refs: tuple[str, ...], identity_threshold: float) -> None:
    """Rank FACESET's faces by a key into a browsable folder (00001_<name>.png, ...)."""
    from .sort import KEYS, sort_faceset
    from .sort.run import default_output

    try:
        result = sort_faceset(faceset, by, output, move=move, bins=bins, dry_run=dry_run,
                              identity_refs=identity_refs, threshold=identity_threshold)
    except KeyboardInterrupt:  # each face lands whole (see faceswap_lite.sort.order)
        out = output or default_output(faceset, by)
        _interrupted("nothing was written." if dry_run else
                     f"the faces {'moved' if move else 'copied'} so far into {out} are whole; nothing was deleted.")
    for line in result.scan.skipped_lines():
        click.echo(f"Warning: {line}", err=True)
    if dry_run:
        click.echo(f"# {by}: {KEYS[by].help}")
        for line in result.lines():
            click.echo(line)
        return
    how = "Moved" if move else "Copied"
    computed = f" ({result.scan.computed} descriptors computed: older faces)" if result.scan.computed else ""
    click.echo(f"{how} {len(result.ranked)} faces into {result.output} by {by}{computed} "
               f"in {result.seconds:.1f} s.")


@main.command("faceset")
@click.argument("faceset", type=click.Path())
@identity_threshold_option
def faceset_cmd(faceset: str, identity_threshold: float) -> None:
    """Summarise FACESET: faces, sources, crop, identity groups, blurred faces, and how to clean it."""
    from .sort import faceset_report

    for line in faceset_report(faceset, identity_threshold).lines():
        click.echo(line)


@main.command("evaluate")
@click.argument("run_dir", type=click.Path())
@click.option("-A", "faces_a", type=click.Path(), help="Evaluate side A on all of this face set (default: the run's held-out faces).")
@click.option("-B", "faces_b", type=click.Path(), help="Evaluate side B on all of this face set (default: the run's held-out faces).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="A checkpoint file (default: the newest).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--json", "as_json", is_flag=True, help="Print the panel as one JSON object (metrics per side).")
def evaluate_cmd(run_dir: str, faces_a: str | None, faces_b: str | None, checkpoint: str | None, device: str,
                 as_json: bool) -> None:
    """The metric panel of RUN_DIR on faces it did not train on.

    Masked PSNR and SSIM, MS-SSIM, GMSD and LPIPS (when its weights are on the machine) of each side's
    reconstructions, inside the face mask; for a two-side run also the swap's identity (dlib descriptor
    distance of A->B faces to B's and A's centre, share called B at 0.6) and expression kept (landmark
    distance between a face and its swap, in inter-ocular distances).
    """
    import json

    from .evaluate.panel import evaluate_run

    panel = evaluate_run(run_dir, {"a": faces_a, "b": faces_b}, checkpoint, device)
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

    from .evaluate.compare import plan_compare, run_compare, unfinished

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
