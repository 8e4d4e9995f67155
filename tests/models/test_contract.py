"""The model contract, checked on every registered model (built-ins, entry points and plugin folders),
so a new model is checked without anyone writing this test for it.

At its defaults a model is built on the ``meta`` device (no memory, no time): ``MODELS.build``
checks it is an ``nn.Module`` with an int ``resolution`` and the sides it was given. The forward
pass runs on small settings where a built-in has them, else at the defaults.
"""

from __future__ import annotations

import pytest
import torch

from faceswap_lite.registry import MODELS

from ..helpers import EXAMPLES, TINY_MODEL_SETTINGS, TINY_SAE_SETTINGS, plugin_names

# Small settings for the built-ins, so a forward pass takes milliseconds on a CPU.
SMALL = {
    "original": TINY_MODEL_SETTINGS,
    "face128": TINY_MODEL_SETTINGS,
    "sae": TINY_SAE_SETTINGS,
}
NAMES = plugin_names("models")
SIDES = ("a", "b")


@pytest.mark.parametrize("name", NAMES)
def test_defaults_build_with_resolution_and_sides(clean_registry, name):
    clean_registry.load_plugins([EXAMPLES])
    with torch.device("meta"):
        model = MODELS.build(name, {}, sides=SIDES)
    assert isinstance(model.resolution, int) and model.resolution > 0
    assert tuple(model.sides) == SIDES


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_range_dtype_per_side(clean_registry, name):
    clean_registry.load_plugins([EXAMPLES])
    torch.manual_seed(0)
    model = MODELS.build(name, SMALL.get(name, {}), sides=SIDES).eval()
    r = model.resolution
    x = torch.rand(2, 3, r, r)
    with torch.no_grad():
        outs = {side: model(x, side) for side in SIDES}
    for side, y in outs.items():
        assert y.shape == (2, 3, r, r) and y.dtype == torch.float32, (side, y.shape, y.dtype)
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0 and torch.isfinite(y).all()
    assert not torch.equal(outs["a"], outs["b"]), "each side has its own decoder"
