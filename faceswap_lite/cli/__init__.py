"""The ``faceswap-lite`` command: one click group (:mod:`.group`), one module per family of commands.

This package is the only code that prints to the console or exits; everything else logs or raises.
Options several commands share are declared once in :mod:`.common`.
"""

from . import faces, frames, info, measure, training  # noqa: F401 - importing a module adds its commands
from .group import main

__all__ = ["main"]
