"""Shared fixtures."""

from __future__ import annotations

import pytest

from faceswap_lite import registry

from .helpers import restore_registries, snapshot_registries


@pytest.fixture(autouse=True)
def clean_registry():
    """Load the built-ins, then restore every registry and the loader state after the test.

    Autouse: tests that load user plugins (through the CLI, in process) must not leave them, or
    their load failures, to the tests that follow.
    """
    registry.load_plugins()
    saved = snapshot_registries()
    yield registry
    restore_registries(saved)
