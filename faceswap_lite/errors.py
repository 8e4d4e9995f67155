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


def did_you_mean(name: str, options: list[str] | tuple[str, ...]) -> str:
    """``"; did you mean 'x'?"`` for the closest option, or ``""``.

    Close spelling (difflib), else an option that the name starts with or contains (``lr_rate`` -> ``lr``).
    """
    import difflib

    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    if not close:
        close = [o for o in sorted(options, key=len, reverse=True) if len(o) >= 2 and (name.startswith(o) or o in name)]
    return f"; did you mean {close[0]!r}?" if close else ""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type name when the message is empty),
    cut to ``limit`` characters: what a one-line error quotes of a library's exception."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
