"""The face-set tools: ``sort`` and ``faceset``."""

from __future__ import annotations

import click

from .common import identity_threshold_option, interrupted
from .group import main


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
    from ..sort import KEYS, sort_faceset
    from ..sort.run import default_output

    try:
        result = sort_faceset(faceset, by, output, move=move, bins=bins, dry_run=dry_run,
                              identity_refs=identity_refs, threshold=identity_threshold)
    except KeyboardInterrupt:  # each face lands whole (see faceswap_lite.sort.order)
        out = output or default_output(faceset, by)
        interrupted("nothing was written." if dry_run else
                     f"the faces {'moved' if move else 'copied'} so far into {out} are whole; nothing was deleted; "
                     "run the same command again to finish.")
    for line in result.scan.skipped_lines() if result.scan else []:
        click.echo(f"Warning: {line}", err=True)
    if dry_run:
        click.echo(f"# {by}: {KEYS[by].help}")
        for line in result.lines():
            click.echo(line)
        return
    how = "Moved" if move else "Copied"
    computed = f" ({result.scan.computed} descriptors computed: older faces)" if result.scan and result.scan.computed else ""
    resumed = f" (finishing an unfinished sort: {result.already_there} were there)" if result.scan is None else ""
    click.echo(f"{how} {len(result.targets)} faces into {result.output} by {by}{computed}{resumed} "
               f"in {result.seconds:.1f} s.")


@main.command("faceset")
@click.argument("faceset", type=click.Path())
@identity_threshold_option
def faceset_cmd(faceset: str, identity_threshold: float) -> None:
    """Summarise FACESET: faces, sources, crop, identity groups, blurred faces, and how to clean it."""
    from ..sort import faceset_report

    for line in faceset_report(faceset, identity_threshold).lines():
        click.echo(line)
