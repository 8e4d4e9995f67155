"""What several commands share, written once: options, logging, plugin loading, the frames progress
bar and the one way extract, convert and sort report Ctrl-C."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from ..errors import FaceswapLiteError
from ..identity import DEFAULT_THRESHOLD as DEFAULT_IDENTITY_THRESHOLD

log = logging.getLogger("faceswap_lite")


# Options several commands share, written once (as pip-tools' scripts/options.py does).
plugins_dir_option = click.option(
    "--plugins-dir", "plugins_dirs", multiple=True, type=click.Path(file_okay=False),
    help="Folder of user plugin files (*.py) to load; repeatable.")
raw_weights_option = click.option(
    "--raw-weights", is_flag=True,
    help="Use the raw weights of a run trained with train.ema, not their average (the default when it has one).")
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


def setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("faceswap_lite").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def load_plugins(dirs: tuple[str, ...] | list[str]) -> None:
    from ..registry import load_plugins

    for failure in load_plugins(dirs):
        click.echo(f"Warning: plugin {failure.source} failed to load: {failure.error}", err=True)


def parse_detector_settings(items: tuple[str, ...]) -> dict[str, Any]:
    """``-s KEY=VALUE`` detector settings, parsed as ``--set`` values are (TOML)."""
    from ..config import parse_override

    settings = {}
    for item in items:
        (key, *rest), value = parse_override(item, "--detector-setting", "upsample=2")
        if rest:
            raise FaceswapLiteError(f"--detector-setting {item!r}: a detector setting is one name, like upsample")
        settings[key.strip()] = value
    return settings


def frame_bar(total: int, progress: bool | None) -> tuple[Any, Callable[[int, int], None]]:
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


def interrupted(kept: str) -> NoReturn:
    """Ctrl-C, said one way by extract, convert and sort: what is kept, on one line; exit 130 (128 + SIGINT)."""
    click.echo(f"Interrupted: {kept}", err=True)
    sys.exit(130)


def run_frames(run: Callable[[Callable[[int, int], None]], Any], total: int, progress: bool | None,
                kept: Callable[[Any], str]) -> Any:
    """Run an extract or convert (``run(on_progress)``) behind a frames progress bar, print its
    summary and return it. Ctrl-C stops it the engine's one way (:func:`faceswap_lite.frames.running`):
    then one line says ``kept(summary)`` instead (the summary of what was done; None when Ctrl-C
    came as extract's workers started or stopped) and the exit status is 130."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from ..frames import Interrupted

    bar, on_progress = frame_bar(total, progress)
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
        interrupted(kept(summary))
    for line in summary.lines():
        click.echo(line)
    return summary
