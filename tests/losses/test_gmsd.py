"""GMSD: piq's values on every shared case, a finite gradient where piq's is NaN, the contract."""

from __future__ import annotations

import piq
import pytest
import torch

from faceswap_lite.errors import PluginError
from faceswap_lite.plugins.losses.gmsd import GMSD, sqrt_zero_grad
from faceswap_lite.registry import LOSSES
from tools.references.cases import case_names

from .common import (
    case_tensors,
    check_gradcheck,
    compare_to_refs,
    load_refs,
)


@pytest.fixture(scope="module")
def loss() -> GMSD:
    return GMSD()


@pytest.fixture(scope="module")
def refs() -> dict:
    return load_refs("gmsd")


def test_gradcheck(loss):
    check_gradcheck(loss, (1, 3, 5, 6))  # odd height: the zero-padded 2×2 mean is differentiated too


def test_matches_piq_float64(loss, refs):
    assert refs["peer"].startswith("piq")
    assert compare_to_refs(loss, refs, "float64", rtol=1e-6, atol=1e-12) == len(case_names())


def test_matches_piq_float32(loss, refs):
    compare_to_refs(loss, refs, "float32", rtol=1e-5, atol=1e-7)


def test_float32_close_to_float64_reference(loss, refs):
    """Our float32 against piq's float64 numbers: float32 statistics are good to ~1e-6 relative."""
    compare_to_refs(lambda x, y: loss(x.float(), y.float()), refs, "float64", rtol=1e-5, atol=1e-7)


def test_identical_and_constant_give_exactly_zero_with_finite_gradient(loss):
    for name in case_names():
        if not name.startswith(("identical", "constant_")) or name.startswith("constant_vs"):
            continue
        for dtype in (torch.float64, torch.float32):
            x, y = case_tensors(name, dtype)
            x.requires_grad_(True)
            out = loss(x, y)
            assert torch.equal(out.detach(), torch.zeros_like(out)), f"{name} {dtype}: {out}"
            out.sum().backward()
            assert torch.isfinite(x.grad).all(), f"{name} {dtype}: non-finite gradient"


def test_finite_gradient_wherever_piq_is_nan(loss, refs):
    """The stored references record piq's gradient: NaN on identical, constant and flat images."""
    nan_cases = [n for n, e in refs["cases"].items() if not all(e["peer_grad_finite"].values())]
    assert any(n.startswith("identical") for n in nan_cases)
    assert any(n.startswith("constant_vs_image") for n in nan_cases)
    for name in nan_cases:
        for dtype in (torch.float64, torch.float32):
            x, y = case_tensors(name, dtype)
            x.requires_grad_(True)
            loss(x, y).sum().backward()
            assert torch.isfinite(x.grad).all(), f"{name} {dtype}: ours is non-finite too"


def test_piq_gradient_is_nan_where_ours_is_finite(loss):
    """Live: the peer's gradient on identical images is NaN; ours is finite (and zero)."""
    x, y = case_tensors("identical_64_b4", torch.float64)
    xp = x.clone().requires_grad_(True)
    piq.gmsd(xp, y, reduction="none").sum().backward()
    assert torch.isnan(xp.grad).any()
    xo = x.clone().requires_grad_(True)
    loss(xo, y).sum().backward()
    assert torch.isfinite(xo.grad).all() and xo.grad.abs().max() == 0


def test_gradient_equals_piq_where_piq_is_finite(loss):
    """The safe square roots change no gradient where piq's is defined."""
    for name in ("noisy_64_b4", "shifted_99_b1"):
        x, y = case_tensors(name, torch.float64)
        xp = x.clone().requires_grad_(True)
        piq.gmsd(xp, y, reduction="none").sum().backward()
        xo = x.clone().requires_grad_(True)
        loss(xo, y).sum().backward()
        assert torch.isfinite(xp.grad).all()
        torch.testing.assert_close(xo.grad, xp.grad, rtol=1e-7, atol=1e-12)


def test_sqrt_zero_grad():
    s = torch.tensor([0.0, 1e-300, 0.25, 4.0], dtype=torch.float64, requires_grad=True)
    r = sqrt_zero_grad(s)
    assert torch.equal(r.detach(), torch.sqrt(s.detach()))
    r.sum().backward()
    expected = torch.tensor([0.0, 0.5e150, 1.0, 0.25], dtype=torch.float64)
    torch.testing.assert_close(s.grad, expected)


def test_grey_input_is_used_as_is(loss):
    x, y = case_tensors("noisy_64_b4", torch.float64)
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    grey_x, grey_y = (x * w).sum(1, keepdim=True), (y * w).sum(1, keepdim=True)
    torch.testing.assert_close(loss(grey_x, grey_y), loss(x, y), rtol=1e-12, atol=1e-15)


def test_data_range_scales_t(loss):
    x, y = case_tensors("blurred_64_b4", torch.float64)
    torch.testing.assert_close(GMSD(data_range=255.0)(255 * x, 255 * y), loss(x, y), rtol=1e-10, atol=0)


def test_registered_and_settings_checked():
    assert isinstance(LOSSES.build("gmsd", {"t": 0.01}), GMSD)
    with pytest.raises(PluginError, match="data_range must be > 0"):
        LOSSES.build("gmsd", {"data_range": 0.0})


@pytest.mark.parametrize("kwargs, match", [
    ({"data_range": 0.0}, "data_range"),
    ({"data_range": -1.0}, "data_range"),
    ({"t": 0.0}, "t must be > 0"),
    ({"t": float("nan")}, "t must be > 0"),
])
def test_invalid_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GMSD(**kwargs)


def test_invalid_inputs(loss):
    with pytest.raises(ValueError, match="N×3×H×W RGB or N×1×H×W"):
        loss(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_gradient_equals_piq_for_both_inputs(loss):
    """pred and target take separate paths; with both requiring a gradient, both match piq's."""
    x, y = case_tensors("noisy_64_b4", torch.float64)
    xp, yp = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    piq.gmsd(xp, yp, reduction="none").sum().backward()
    xo, yo = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    loss(xo, yo).sum().backward()
    torch.testing.assert_close(xo.grad, xp.grad, rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(yo.grad, yp.grad, rtol=1e-7, atol=1e-12)
