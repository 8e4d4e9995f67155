"""Errors the user can fix. They print as one ``Error: ...`` line without a traceback."""

from __future__ import annotations

import click


class FaceswapLiteError(click.ClickException):
    """A problem with the user's input (file, config key, value): the message says how to fix it."""

    exit_code = 2


class PluginError(FaceswapLiteError):
    """A plugin could not be loaded or registered."""


class ConfigError(FaceswapLiteError):
    """A config file or ``--set`` override is invalid."""


class NonFiniteLossError(FaceswapLiteError):
    """A loss component produced NaN or infinity."""

    exit_code = 3
