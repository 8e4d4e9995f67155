"""LPL: the plain NumPy reference's values, the map/canonical relation, the contract."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from faceswap_lite.errors import PluginError
from faceswap_lite.losses.filters import gaussian_kernel1d, separable_filter
from faceswap_lite.plugins.losses.lpl import LPL, band_and_blur, lpl
from faceswap_lite.registry import LOSSES
from tools.references.cases import case_names

from ..helpers import load_script
from .common import (
    case_tensors,
    check_gradcheck,
    compare_to_refs,
    load_refs,
)


@pytest.fixture(scope="module")
def loss() -> LPL:
    return LPL()


@pytest.fixture(scope="module")
def refs() -> dict:
    return load_refs("lpl")


@pytest.fixture(scope="module")
def numpy_reference():
    """tools/references/lpl.py as a module (its plain NumPy functions)."""
    return load_script("tools/references/lpl.py")


def test_gradcheck():
    # The map output makes the Jacobian (N·C·H·W)²: a 2-level pyramid on 8×8 keeps it small.
    check_gradcheck(LPL(levels=2), (1, 1, 8, 8))
    # The canonical value with the default 5 levels needs 32 px: check it by random projections.
    g = torch.Generator().manual_seed(0)
    x = torch.rand((1, 1, 32, 33), generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand((1, 1, 32, 33), generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: lpl(a, y), (x,), fast_mode=True)


def test_matches_numpy_reference_float64(loss, refs):
    assert refs["settings"] == {"levels": 5, "sigma": 1.0, "kernel_size": 5}
    assert compare_to_refs(loss.per_item, refs, "float64", rtol=1e-6, atol=1e-15) == len(case_names())


def test_matches_numpy_reference_float32(loss, refs):
    compare_to_refs(loss.per_item, refs, "float32", rtol=1e-5, atol=1e-9)


def test_float32_close_to_float64_reference(loss, refs):
    """The difference-to-centre band keeps float32 within 1e-6 of the float64 value (a plain
    blur-then-subtract, like the NumPy float32 reference, is off by up to 6e-6)."""
    compare_to_refs(lambda x, y: loss.per_item(x.float(), y.float()), refs, "float64", rtol=1e-6, atol=1e-9)


def test_non_default_settings_match_numpy_reference(numpy_reference):
    g = torch.Generator().manual_seed(2)
    x = torch.rand((2, 3, 45, 38), generator=g, dtype=torch.float64)
    y = torch.rand((2, 3, 45, 38), generator=g, dtype=torch.float64)
    for settings in ({"levels": 3, "sigma": 2.0, "kernel_size": 7}, {"levels": 0, "sigma": 1.0, "kernel_size": 5},
                     {"levels": 4, "sigma": 0.7, "kernel_size": 3}):
        ours = LPL(**settings).per_item(x, y).numpy()
        theirs = [numpy_reference.lpl_item(x[i].numpy(), y[i].numpy(), **settings) for i in range(2)]
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, err_msg=str(settings))


def test_map_mean_equals_canonical_value(loss):
    """Exact (to rounding) when H, W are multiples of 2**levels; close otherwise (99, 176 px)."""
    for name in [n for n in case_names() if n.startswith(("noisy", "anticorrelated"))]:
        size = int(name.rsplit("_", 2)[1])
        x, y = case_tensors(name, torch.float64)
        out = loss(x, y)
        assert out.shape == x.shape
        exact = size % 2**loss.levels == 0
        torch.testing.assert_close(out.mean(dim=(1, 2, 3)), loss.per_item(x, y), rtol=1e-12 if exact else 1e-5,
                                   atol=1e-15, msg=lambda m, name=name: f"{name}: {m}")


def test_band_and_blur_equals_shared_filter():
    x = torch.rand(2, 3, 11, 14, dtype=torch.float64)
    for size, sigma in ((5, 1.0), (7, 2.0), (3, 0.5), (1, 1.0)):
        kernel = gaussian_kernel1d(size, sigma, torch.float64)
        band, blurred = band_and_blur(x, kernel)
        ref = separable_filter(x, kernel, padding="replicate")
        torch.testing.assert_close(blurred, ref, rtol=0, atol=1e-14)
        torch.testing.assert_close(band, x - ref, rtol=0, atol=1e-14)


def test_defaults_are_faceswaps_code():
    """faceswap's docstring says sigma 2.0; its code (what users trained with) uses 1.0."""
    defaults = {k: p.default for k, p in inspect.signature(LPL).parameters.items()}
    assert defaults == {"levels": 5, "sigma": 1.0, "kernel_size": 5}
    x, y = case_tensors("noisy_64_b4", torch.float64)
    assert not torch.allclose(LPL(sigma=2.0).per_item(x, y), LPL().per_item(x, y))


def test_odd_sizes_floor_like_avg_pool(loss):
    """A 33×33 image with 5 levels: 33 → 16 → 8 → 4 → 2 → 1; the dropped last row/column still
    counts at level 0 (and through the blur), so changing it changes the value."""
    x = torch.rand(1, 3, 33, 33, dtype=torch.float64)
    y = x.clone()
    y[..., -1, :] += 0.1
    assert loss.per_item(x, y).item() > 0 and loss(x, y).shape == (1, 3, 33, 33)


def test_registered_and_settings_checked():
    assert isinstance(LOSSES.build("lpl", {"levels": 3, "sigma": 2}), LPL)
    with pytest.raises(PluginError, match="kernel_size"):
        LOSSES.build("lpl", {"kernel_size": 4})


@pytest.mark.parametrize("kwargs, match", [
    ({"levels": -1}, "levels must be an integer >= 0"),
    ({"sigma": 0.0}, "sigma must be > 0"),
    ({"kernel_size": 4}, "kernel_size must be a positive odd integer"),
    ({"kernel_size": 0}, "kernel_size must be a positive odd integer"),
])
def test_invalid_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LPL(**kwargs)


def test_too_small_image(loss):
    with pytest.raises(ValueError, match="at least 32×32"):
        loss(torch.rand(1, 3, 31, 64), torch.rand(1, 3, 31, 64))


def test_unit_sum_kernel_sums_to_exactly_one():
    """The blur window's taps sum to 1 exactly in the compute dtype, a few ulps from the Gaussian."""
    from fractions import Fraction

    from faceswap_lite.plugins.losses.lpl import unit_sum_kernel2d

    for size, sigma in ((5, 1.0), (7, 2.0), (3, 0.5), (1, 1.0), (31, 5.0)):
        k = gaussian_kernel1d(size, sigma, torch.float64)
        exact = k[:, None] * k[None, :]
        for dtype, tol in ((torch.float32, 3e-8), (torch.float64, 1e-15)):
            taps = unit_sum_kernel2d(k, dtype)
            assert taps.dtype == dtype and taps.shape == (size, size)
            assert sum(Fraction(float(v)) for v in taps.flatten()) == 1, (size, sigma, dtype)
            assert (taps.double() - exact).abs().max() <= tol, (size, sigma, dtype)


def test_float32_error_no_worse_than_before(loss, refs):
    """The band-from-differences implementation this replaced was within 2.4e-7 of float64 on these
    cases; the unit-sum 2-D window must stay within that (it measures 1.1e-7)."""
    compare_to_refs(lambda x, y: loss.per_item(x.float(), y.float()), refs, "float64", rtol=2.5e-7, atol=1e-9)
