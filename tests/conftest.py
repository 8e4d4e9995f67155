"""Shared fixtures."""

from __future__ import annotations

import pytest

from faceswap_lite import registry


@pytest.fixture(autouse=True)
def clean_registry():
    """Load the built-ins, then run the test in a registry scope: every registry and the loader's
    state are as they were after it.

    Autouse: tests that load user plugins (through the CLI, in process) must not leave them, or
    their load failures, to the tests that follow.
    """
    registry.load_plugins()
    with registry.scope():
        yield registry
