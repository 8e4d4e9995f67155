"""MS-SSIM: the shared contract (at a size the settings allow), the peers' values (piq,
pytorch-msssim), the too-small policy, the safe power and the settings' errors."""

from __future__ import annotations

import logging

import pytest
import torch

from faceswap_lite.errors import PluginError
from faceswap_lite.plugins.losses.ms_ssim import (
    MSSSIM,
    WEIGHTS,
    _ReluPow,
    min_side,
    ms_ssim_per_item,
    scale_weights,
    scales_that_fit,
)
from faceswap_lite.registry import LOSSES, load_plugins

from .common import (
    case_tensors,
    check_finite_gradients,
    check_gradcheck,
    check_identical_zero,
    compare_to_refs,
    load_refs,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/losses/conftest.py


def test_gradcheck_small_settings() -> None:
    """The smallest inputs the settings allow (the contract runs 3 scales: tests/losses/test_contract.py)."""
    check_gradcheck(MSSSIM(window_size=3, scales=3), (1, 2, 9, 9))  # the smallest: 9 px
    check_gradcheck(MSSSIM(window_size=5, sigma=1.0, scales=2), (2, 1, 11, 10))


def test_contract_defaults_at_176() -> None:
    loss = MSSSIM()
    check_identical_zero(loss, size=176, atol=0.0)
    check_finite_gradients(loss, sizes=(176,))


def test_registered_and_built_by_name() -> None:
    load_plugins()
    assert LOSSES.get("ms_ssim") is MSSSIM
    loss = LOSSES.build("ms_ssim", {"scales": 4, "small": "fewer_scales"})
    assert isinstance(loss, MSSSIM) and loss.scales == 4


@pytest.mark.parametrize("dtype_key,rtol,atol", [("float64", 1e-6, 0.0), ("float32", 1e-5, 2e-5)])
def test_matches_piq(dtype_key: str, rtol: float, atol: float) -> None:
    refs = load_refs("ms_ssim")
    assert refs["settings"]["scales"] == 5
    assert compare_to_refs(ms_ssim_per_item, refs, dtype_key, rtol, atol) == 14  # 176 and 256 px


@pytest.mark.parametrize("dtype_key", ["float64", "float32"])
def test_matches_pytorch_msssim(dtype_key: str) -> None:
    # pytorch-msssim builds its window in float32 even for float64 images: up to ~1e-5 away.
    compare_to_refs(ms_ssim_per_item, load_refs("ms_ssim_pytorch_msssim"), dtype_key, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("dtype_key,rtol,atol", [("float64", 1e-6, 0.0), ("float32", 1e-5, 2e-5)])
def test_three_scales_match_piq_including_odd_sizes(dtype_key: str, rtol: float, atol: float) -> None:
    """64, 99 (odd: the last row / column is replicated before halving) and 128 px with 3 scales."""
    refs = load_refs("ms_ssim_scales3")
    assert refs["settings"]["scales"] == 3
    assert compare_to_refs(lambda x, y: ms_ssim_per_item(x, y, scales=3), refs, dtype_key, rtol, atol) == 22


def test_loss_is_one_minus_value() -> None:
    x, y = case_tensors("noisy_176_b1", torch.float32)
    loss = MSSSIM()
    out = loss(x, y)
    assert out.shape == (1,) and out.dtype == torch.float32
    torch.testing.assert_close(out, 1 - loss.per_item(x, y))


def test_anticorrelated_is_zero_with_finite_gradient() -> None:
    x, y = case_tensors("anticorrelated_176_b1", torch.float32)
    x.requires_grad_(True)
    value = ms_ssim_per_item(x, y)
    assert value.item() == 0.0  # a negative cs at some scale, clamped by the ReLU
    value.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_relu_pow_gradient_is_finite() -> None:
    v = torch.tensor([-1.0, 0.0, 1e-30, 1e-3, 0.5, 1.0], dtype=torch.float64, requires_grad=True)
    beta = torch.tensor(0.0448, dtype=torch.float64)
    out = _ReluPow.apply(v, beta)
    torch.testing.assert_close(out, v.detach().clamp(min=0) ** 0.0448)
    out.sum().backward()
    assert torch.isfinite(v.grad).all()
    assert v.grad[0] == 0 and v.grad[1] == 0
    torch.testing.assert_close(v.grad[3:], 0.0448 * v.detach()[3:] ** (0.0448 - 1))


def test_weights_and_sizes() -> None:
    assert scale_weights(5) == WEIGHTS == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    assert abs(sum(scale_weights(3)) - 1) < 1e-12 and scale_weights(1) == (1.0,)
    assert [min_side(11, m) for m in (5, 4, 3)] == [161, 81, 41]
    assert [min_side(7, m) for m in (5, 4, 3)] == [97, 49, 25]
    assert scales_that_fit(160) == 4 and scales_that_fit(161) == 5 and scales_that_fit(10) == 0
    assert scales_that_fit(64, window_size=7) == 4


def test_fits_hook_gives_the_scales_a_size_allows() -> None:
    assert MSSSIM.fits({}, 64) == {"scales": 3} and MSSSIM.fits({}, 512) == {"scales": 5}
    assert MSSSIM.fits({"window_size": 7, "scales": 3}, 128) == {"window_size": 7, "scales": 3}
    assert MSSSIM.fits({}, 10) is None
    x, y = case_tensors("noisy_64_b4", torch.float32)
    assert MSSSIM(**MSSSIM.fits({}, 64))(x, y).shape == (4,)


def test_too_small_is_an_error_by_default() -> None:
    x, y = case_tensors("noisy_128_b1", torch.float32)
    with pytest.raises(ValueError) as info:
        MSSSIM()(x, y)
    message = str(info.value)
    assert "\n" not in message
    for part in ("128×128", "161", "window_size=11", "scales=5", "scales=4", "window_size=7", "small='fewer_scales'"):
        assert part in message, part
    with pytest.raises(ValueError, match="161"):
        ms_ssim_per_item(x, y)


def test_fewer_scales_warns_once_and_says_what_it_used(caplog: pytest.LogCaptureFixture) -> None:
    x, y = case_tensors("noisy_64_b4", torch.float32)
    loss = MSSSIM(small="fewer_scales")
    with caplog.at_level(logging.WARNING, logger="faceswap_lite.plugins.losses.ms_ssim"):
        first = loss(x, y)
        second = loss(x, y)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "using 3 scales" in warnings[0].getMessage() and "64×64" in warnings[0].getMessage()
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first, MSSSIM(scales=3)(x, y))
    with pytest.raises(ValueError, match="at least"):  # smaller than one window: still an error
        loss(x[..., :9, :9], y[..., :9, :9])


@pytest.mark.parametrize("settings", [
    {"scales": 0}, {"scales": 6}, {"small": "shrink"}, {"window_size": 4}, {"sigma": -1.0}, {"data_range": 0.0},
])
def test_invalid_settings(settings: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        MSSSIM(**settings)
    load_plugins()
    with pytest.raises(PluginError, match="ms_ssim"):
        LOSSES.build("ms_ssim", settings)
