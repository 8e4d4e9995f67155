"""Shared fixtures."""

from __future__ import annotations

import copy

import pytest

from faceswap_lite import registry


@pytest.fixture(autouse=True)
def clean_registry():
    """Load the built-ins, then restore every registry and the loader state after the test.

    Autouse: tests that load user plugins (through the CLI, in process) must not leave them, or
    their load failures, to the tests that follow.
    """
    registry.load_plugins()
    regs = (registry.LOSSES, registry.DETECTORS, registry.MODELS)
    saved = [(dict(r._items), dict(r._origin)) for r in regs]
    state = copy.copy(registry._STATE.__dict__)
    state = {k: copy.copy(v) for k, v in state.items()}
    yield registry
    for r, (items, origin) in zip(regs, saved):
        r._items, r._origin = items, origin
    registry._STATE.__dict__.update(state)
