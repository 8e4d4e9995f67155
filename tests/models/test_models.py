"""Model plugins: shapes, range, dtype, sides, presets, settings checked through the registry."""

from __future__ import annotations

import pytest
import torch

from faceswap_lite.errors import PluginError
from faceswap_lite.plugins.models.original import Face128, Original
from faceswap_lite.registry import MODELS

from ..helpers import TINY_MODEL_SETTINGS

TINY = TINY_MODEL_SETTINGS


@pytest.fixture(scope="module")
def tiny() -> Original:
    torch.manual_seed(0)
    return MODELS.build_table({"name": "original", **TINY}, sides=("a", "b")).eval()


def test_output_shape_range_dtype(tiny):
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        y = tiny(x, "a")
    assert y.shape == (3, 3, 64, 64) and y.dtype == torch.float32
    assert float(y.min()) > 0.0 and float(y.max()) < 1.0
    assert tiny.resolution == 64 and tiny.sides == ("a", "b")


def test_sides_have_their_own_decoder(tiny):
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(tiny(x, "a"), tiny(x, "b"))
    assert set(tiny.decoders) == {"a", "b"}
    with pytest.raises(ValueError, match="unknown side 'c'"):
        tiny(x, "c")
    with pytest.raises(ValueError, match="expects N×3×64×64"):
        tiny(torch.rand(2, 3, 32, 32), "a")


def test_gradients_reach_the_encoder_and_only_the_used_decoder():
    torch.manual_seed(0)
    model = Original(**TINY, sides=("a", "b"))
    model(torch.rand(2, 3, 64, 64), "a").mean().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoders["a"].parameters())
    assert all(p.grad is None for p in model.decoders["b"].parameters())


@pytest.mark.parametrize("cfg, res", [({"name": "original"}, 64), ({"name": "face128"}, 128),
                                      ({"name": "original", "resolution": 128}, 128),
                                      ({"name": "original", "resolution": 256}, 256)])
def test_presets_build_and_run(cfg, res):
    model = MODELS.build_table({**cfg, "width": 1 / 32, "latent": 16}, sides=("a",))
    assert model.resolution == res
    with torch.no_grad():
        assert model(torch.rand(1, 3, res, res), "a").shape == (1, 3, res, res)


def test_full_size_original_matches_faceswap_layout():
    """Full-width 64 px preset: the faceswap Original layer sizes (counted, not run)."""
    with torch.device("meta"):
        model = Original(sides=("a", "b"))
    convs = [m.out_channels for m in model.encoder.convs.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [128, 256, 512, 1024]
    assert model.encoder.to_latent.out_features == 1024 and model.encoder.from_latent.out_features == 4 * 4 * 1024
    ups = [m.out_channels // 4 for m in model.decoders["a"].ups.modules() if isinstance(m, torch.nn.Conv2d)]
    assert ups == [256, 128, 64]
    with torch.device("meta"):
        big = Face128()
    assert big.encoder.to_latent.in_features == 8 * 8 * 1024 and big.encoder.to_latent.out_features == 512


def test_deterministic_given_the_seed():
    x = torch.rand(2, 3, 64, 64)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = MODELS.build_table({"name": "original", **TINY}, sides=("a",))
        with torch.no_grad():
            outs.append(model(x, "a"))
    assert torch.equal(outs[0], outs[1])


def test_channels_last_and_autocast(tiny):
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = tiny(x, "b")
        cl = tiny.to(memory_format=torch.channels_last)
        out = cl(x.contiguous(memory_format=torch.channels_last), "b")
        tiny.to(memory_format=torch.contiguous_format)
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = tiny(x, "b")
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    assert (low - ref).abs().max() < 0.05


def test_settings_are_checked_with_suggestions():
    with pytest.raises(PluginError, match="has no setting 'widht'; did you mean 'width'"):
        MODELS.build_table({"name": "original", "widht": 0.5}, sides=("a",))
    with pytest.raises(PluginError, match="did you mean 'original'"):
        MODELS.build_table({"name": "orignal"}, sides=("a",))
    with pytest.raises(PluginError, match="setting 'width' must be float"):
        MODELS.build_table({"name": "original", "width": "wide"}, sides=("a",))
    with pytest.raises(PluginError, match="resolution must be one of"):
        MODELS.build_table({"name": "original", "resolution": 96}, sides=("a",))
    with pytest.raises(PluginError, match="'sides' is set by the trainer"):
        MODELS.build_table({"name": "original", "sides": ["x"]}, sides=("a",))
    with pytest.raises(PluginError, match="sides must be distinct"):
        MODELS.build_table({"name": "original", **TINY}, sides=("a", "a"))
    assert "sides" not in MODELS.describe("original").settings
    assert MODELS.describe("face128").settings["resolution"] == "128"
