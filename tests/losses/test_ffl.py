"""FFL: the official package's values (default and non-default settings), a detached weight, the contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceswap_lite.errors import PluginError
from faceswap_lite.plugins.losses.ffl import FFL
from faceswap_lite.registry import LOSSES
from tools.references.cases import case_names

from .common import (
    case_tensors,
    check_finite_gradients,
    check_gradcheck,
    check_identical_zero,
    compare_to_refs,
    load_refs,
    ops_called,
)


@pytest.fixture(scope="module")
def loss() -> FFL:
    return FFL()


@pytest.fixture(scope="module")
def refs() -> dict:
    return load_refs("ffl")


def full_spectrum_ffl(pred, target, alpha=1.0, patch_factor=1, log_matrix=False, batch_matrix=False,
                      detach=True):
    """An independent per-item FFL: two full ``fft2`` per patch, as the paper writes it.

    ``detach=False`` lets the gradient flow through the weight (faceswap's mistake).
    """
    p = patch_factor
    h, w = pred.shape[-2] // p, pred.shape[-1] // p
    fx = torch.stack([torch.fft.fft2(pred[..., i * h:(i + 1) * h, j * w:(j + 1) * w], norm="ortho")
                      for i in range(p) for j in range(p)], 1)
    fy = torch.stack([torch.fft.fft2(target[..., i * h:(i + 1) * h, j * w:(j + 1) * w], norm="ortho")
                      for i in range(p) for j in range(p)], 1)
    delta = fx - fy
    d = delta.real**2 + delta.imag**2
    weight = torch.sqrt(d) ** alpha
    if log_matrix:
        weight = torch.log(weight + 1.0)
    peak = weight.max() if batch_matrix else weight.flatten(-2).max(-1).values[..., None, None]
    weight = torch.nan_to_num(weight / peak, nan=0.0).clamp(0, 1)
    if detach:
        weight = weight.detach()
    return (weight * d).flatten(1).mean(1)


def test_gradcheck():
    """gradcheck differentiates numerically *through* the weight, which FFL detaches on purpose, so
    it can only hold where the weight is constant: alpha = 0 (w ≡ 1). That checks the spectrum path
    (rfft2 with column multiplicities, patches, odd patch width 3); test_weight_is_detached checks
    the weight."""
    check_gradcheck(FFL(alpha=0.0), (1, 3, 4, 6))
    check_gradcheck(FFL(alpha=0.0, patch_factor=2), (1, 2, 4, 6))


def test_weight_is_detached():
    """Our gradient is the one with w held constant: it equals the independent full-spectrum
    implementation with a detached weight, and differs from the one without (faceswap's)."""
    x, y = case_tensors("noisy_64_b4", torch.float64)
    for settings in ({}, {"alpha": 2.0, "patch_factor": 2}, {"log_matrix": True, "batch_matrix": True}):
        grads = []
        for fn in (FFL(**settings), lambda a, b, s=settings: full_spectrum_ffl(a, b, **s),
                   lambda a, b, s=settings: full_spectrum_ffl(a, b, **s, detach=False)):
            xi = x.clone().requires_grad_(True)
            fn(xi, y).sum().backward()
            grads.append(xi.grad)
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-15)
        assert not torch.allclose(grads[0], grads[2], rtol=1e-3), f"{settings}: weight gradient has no effect?"


def test_gradient_equals_official():
    peer = pytest.importorskip("focal_frequency_loss")
    x, y = case_tensors("shifted_64_b4", torch.float64)
    xo, xp = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    FFL(alpha=2.0)(xo, y).mean().backward()
    peer.FocalFrequencyLoss(alpha=2.0)(xp, y).backward()
    torch.testing.assert_close(xo.grad, xp.grad, rtol=1e-9, atol=1e-15)


def test_rfft_equals_full_spectrum_on_odd_and_even_widths():
    g = torch.Generator().manual_seed(1)
    for shape, p in (((2, 3, 6, 7), 1), ((2, 3, 12, 10), 2), ((1, 1, 9, 9), 3), ((1, 2, 5, 1), 1)):
        x = torch.rand(shape, generator=g, dtype=torch.float64)
        y = torch.rand(shape, generator=g, dtype=torch.float64)
        for settings in ({"patch_factor": p}, {"patch_factor": p, "alpha": 0.5, "log_matrix": True}):
            torch.testing.assert_close(FFL(**settings)(x, y), full_spectrum_ffl(x, y, **settings),
                                       rtol=1e-12, atol=1e-15)


def test_matches_official_float64(loss, refs):
    assert refs["peer"].startswith("focal-frequency-loss")
    assert compare_to_refs(loss, refs, "float64", rtol=1e-6, atol=1e-15) == len(case_names())


def test_matches_official_float32(loss, refs):
    compare_to_refs(loss, refs, "float32", rtol=1e-5, atol=1e-9)


def test_float32_close_to_float64_reference(loss, refs):
    """Our float32 against the official float64 numbers (one FFT of the difference cancels less)."""
    compare_to_refs(lambda x, y: loss(x.float(), y.float()), refs, "float64", rtol=1e-5, atol=1e-9)


def _variant_id(variant: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in variant["settings"].items())


@pytest.mark.parametrize("dtype_key, rtol", [("float64", 1e-6), ("float32", 1e-5)])
def test_matches_official_non_default_settings(refs, dtype_key, rtol):
    assert {"alpha", "patch_factor", "log_matrix", "batch_matrix", "ave_spectrum"} <= {
        k for v in refs["variants"] for k in v["settings"]}
    dtype = torch.float64 if dtype_key == "float64" else torch.float32
    for variant in refs["variants"]:
        ours = FFL(**variant["settings"])
        if variant["reduction"] == "item":
            compare_to_refs(ours, variant, dtype_key, rtol=rtol, atol=1e-12)
            continue
        assert variant["reduction"] == "batch_mean"
        for name, entry in variant["cases"].items():  # coupled items: the official batch value
            x, y = case_tensors(name, dtype)
            np.testing.assert_allclose(ours(x, y).mean().double().item(), entry[dtype_key][0], rtol=rtol,
                                       atol=1e-12, err_msg=f"{name} {_variant_id(variant)}")


def test_batch_mean_equals_official_live():
    peer = pytest.importorskip("focal_frequency_loss")
    x, y = case_tensors("noisy_128_b4", torch.float64)
    for settings in ({}, {"batch_matrix": True, "alpha": 2.0}, {"ave_spectrum": True, "patch_factor": 4}):
        torch.testing.assert_close(FFL(**settings)(x, y).mean(), peer.FocalFrequencyLoss(**settings)(x, y),
                                   rtol=1e-9, atol=0)


def test_ave_spectrum_returns_the_batch_value_n_times():
    x, y = case_tensors("shifted_64_b4", torch.float64)
    out = FFL(ave_spectrum=True)(x, y)
    assert out.shape == (4,) and torch.all(out == out[0])
    # averaging the spectra is averaging the images (the DFT is linear)
    torch.testing.assert_close(out[0], FFL()(x.mean(0, keepdim=True), y.mean(0, keepdim=True))[0])


@pytest.mark.parametrize("settings", [{"alpha": 2.0}, {"log_matrix": True}, {"batch_matrix": True},
                                      {"ave_spectrum": True}, {"patch_factor": 2, "alpha": 0.0}])
def test_finite_gradients_non_default(settings):
    loss = FFL(**settings)
    check_identical_zero(loss)
    check_finite_gradients(loss)


def test_no_host_sync_unlike_official(loss):
    """The official forward reads the weight back (``.item()``) and masks NaN by boolean indexing."""
    peer = pytest.importorskip("focal_frequency_loss")
    x, y = case_tensors("noisy_64_b4", torch.float32)
    theirs = {o.split(".")[0] for o in ops_called(peer.FocalFrequencyLoss(), x, y)}
    ours = {o.split(".")[0] for o in ops_called(loss, x, y)}
    assert "_local_scalar_dense" in theirs
    assert not ours & {"_local_scalar_dense", "nonzero", "is_nonzero"}


def test_registered_and_settings_checked():
    assert isinstance(LOSSES.build("ffl", {"alpha": 2, "patch_factor": 2}), FFL)
    with pytest.raises(PluginError, match="alpha"):
        LOSSES.build("ffl", {"alpha": -1.0})


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": -0.5}, "alpha must be a finite number >= 0"),
    ({"alpha": float("inf")}, "alpha must be a finite number >= 0"),
    ({"patch_factor": 0}, "patch_factor must be an integer >= 1"),
    ({"patch_factor": 2.0}, "patch_factor must be an integer >= 1"),
    ({"log_matrix": 1}, "log_matrix must be true or false"),
])
def test_invalid_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FFL(**kwargs)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="patch_factor 2 must divide the image height and width, got 9×8"):
        FFL(patch_factor=2)(torch.rand(1, 3, 9, 8), torch.rand(1, 3, 9, 8))
    with pytest.raises(ValueError, match="differ"):
        FFL()(torch.rand(1, 3, 8, 8), torch.rand(2, 3, 8, 8))
