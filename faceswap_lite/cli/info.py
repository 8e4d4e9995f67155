"""What the tool knows: ``plugins``, ``losses`` and ``config-reference``."""

from __future__ import annotations

import click

from .common import load_plugins, plugins_dir_option
from .group import main


def _echo_plugins(kinds: list[str], plugins_dirs: tuple[str, ...]) -> None:
    from ..registry import REGISTRIES

    load_plugins(plugins_dirs)
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


@main.command("config-reference")
@click.option("--toml", "as_toml", is_flag=True, help="Print the default config as commented TOML instead.")
def config_reference_cmd(as_toml: bool) -> None:
    """Print the config reference (every key, type, default and meaning) as Markdown."""
    from ..config_reference import commented_toml, reference_markdown

    click.echo(commented_toml() if as_toml else reference_markdown())
