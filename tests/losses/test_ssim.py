"""SSIM: the shared contract, the peers' values (piq, pytorch-msssim, kornia, torchmetrics), the
hand-written gradient against autograd, banding, and the settings' errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import faceswap_lite.losses.ssim_map as ssim_module
from faceswap_lite.errors import PluginError
from faceswap_lite.losses import LossMix
from faceswap_lite.plugins.losses.ssim import SSIM, ssim_map, ssim_per_item
from faceswap_lite.registry import LOSSES, load_plugins
from tools.references.cases import case_names

from .common import (
    case_tensors,
    check_gradcheck,
    compare_to_refs,
    load_refs,
)

PADDINGS = ("reflect", "valid")
_VALUES: dict[tuple, torch.Tensor] = {}


def cached_per_item(padding: str):  # noqa: ANN201
    """ssim_per_item with ``padding``, memoised per case (several reference files share the cases)."""

    def per_item(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        key = (padding, x.dtype, tuple(x.shape), x.sum().item(), y.sum().item(), (x * y).sum().item())
        if key not in _VALUES:
            _VALUES[key] = ssim_per_item(x, y, padding=padding)
        return _VALUES[key]

    return per_item


def reference_ssim_map(x: torch.Tensor, y: torch.Tensor, padding: str, window_size: int = 11, sigma: float = 1.5,
                       k1: float = 0.01, k2: float = 0.03, data_range: float = 1.0) -> torch.Tensor:
    """Wang et al.'s formula written out with a full K×K window and autograd (the test's yardstick)."""
    c = x.shape[1]
    coords = torch.arange(window_size, dtype=x.dtype) - (window_size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :]).expand(c, 1, window_size, window_size)
    if padding == "reflect":
        p = window_size // 2
        x, y = F.pad(x, (p, p, p, p), mode="reflect"), F.pad(y, (p, p, p, p), mode="reflect")

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/losses/conftest.py


@pytest.mark.parametrize("padding", PADDINGS)
def test_gradcheck(padding: str) -> None:
    check_gradcheck(SSIM(padding=padding), (1, 2, 12, 12) if padding == "valid" else (1, 3, 8, 8))
    check_gradcheck(SSIM(window_size=5, sigma=1.0, padding=padding), (2, 1, 7, 6))


def test_registered_and_built_by_name() -> None:
    load_plugins()
    assert LOSSES.get("ssim") is SSIM
    loss = LOSSES.build("ssim", {"padding": "valid", "window_size": 7})
    assert isinstance(loss, SSIM) and loss.window_size == 7


@pytest.mark.parametrize("dtype_key,rtol,atol", [("float64", 1e-6, 0.0), ("float32", 1e-5, 2e-5)])
@pytest.mark.parametrize("refs_name,padding", [
    ("ssim", "valid"),  # piq
    ("ssim_reflect", "reflect"),  # kornia padding="same" (reflect), eps=0
    ("ssim_reflect_torchmetrics", "reflect"),  # torchmetrics (reflect-pads, averages the whole map)
])
def test_matches_peers(refs_name: str, padding: str, dtype_key: str, rtol: float, atol: float) -> None:
    refs = load_refs(refs_name)
    assert refs["settings"]["padding"] == padding
    n = compare_to_refs(cached_per_item(padding), refs, dtype_key, rtol, atol)
    assert n == len(case_names())


@pytest.mark.parametrize("dtype_key", ["float64", "float32"])
def test_matches_pytorch_msssim(dtype_key: str) -> None:
    # pytorch-msssim builds its window in float32 even for float64 images: ~1e-5 from the exact value.
    compare_to_refs(cached_per_item("valid"), load_refs("ssim_pytorch_msssim"), dtype_key, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("refs_name,padding", [("ssim", "valid"), ("ssim_reflect", "reflect")])
def test_float32_close_to_exact(refs_name: str, padding: str) -> None:
    """float32 values against the peers' float64 ones: only float32 cancellation remains (< 1e-5)."""
    refs = load_refs(refs_name)
    for name in case_names():
        x, y = case_tensors(name, torch.float32)
        ours = cached_per_item(padding)(x, y).double().numpy()
        np.testing.assert_allclose(ours, refs["cases"][name]["float64"], rtol=0, atol=1.5e-5, err_msg=name)


@pytest.mark.parametrize("padding", PADDINGS)
def test_map_shape_and_mean(padding: str) -> None:
    x, y = case_tensors("noisy_99_b1", torch.float32)
    out = SSIM(padding=padding)(x, y)
    assert out.shape == ((1, 3, 99, 99) if padding == "reflect" else (1, 3, 89, 89))
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), 1 - ssim_per_item(x, y, padding=padding))
    assert SSIM(padding=padding).per_item(x, y).shape == (1,)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradient_matches_autograd_reference(padding: str, dtype: torch.dtype) -> None:
    """The written-out backward against autograd through the plain formula, for the three kinds of
    incoming gradient (a full map, one value per plane, one value) and for both inputs."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 24, 21, generator=g, dtype=dtype)
    y = (x + 0.2 * torch.rand(x.shape, generator=g, dtype=dtype)).clamp(0, 1)
    weight = torch.rand(2, 3, *reference_ssim_map(x, y, padding).shape[-2:], generator=g, dtype=dtype)
    reductions = {
        "map": lambda m: (m * weight).sum(),
        "per_plane": lambda m: (m.mean(dim=(2, 3)) * weight[:, :, 0, 0]).sum(),
        "one_value": lambda m: m.mean(),
    }
    tol = {"rtol": 1e-9, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-3, "atol": 2e-6}
    for label, reduce in reductions.items():
        a, b = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        reduce(ssim_map(a, b, padding=padding)).backward()
        ra, rb = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        reduce(reference_ssim_map(ra, rb, padding)).backward()
        torch.testing.assert_close(a.grad, ra.grad, **tol, msg=lambda m, label=label: f"{label} d/dx: {m}")
        torch.testing.assert_close(b.grad, rb.grad, **tol, msg=lambda m, label=label: f"{label} d/dy: {m}")


def test_cs_map_gradient() -> None:
    x = torch.rand(1, 2, 10, 9, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 2, 10, 9, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: ssim_map(a, y, window_size=5, cs_only=True), (x,))


@pytest.mark.parametrize("padding", PADDINGS)
def test_bands_and_chunks_give_the_same_numbers(padding: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large images are processed in bands of rows and chunks of planes: same map, same gradient."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 47, 30, generator=g, dtype=torch.float64)
    y = torch.rand(3, 3, 47, 30, generator=g, dtype=torch.float64)
    weight = torch.rand(ssim_map(x, y, padding=padding).shape, generator=g, dtype=torch.float64)

    def run() -> tuple[torch.Tensor, ...]:
        a, b = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        out = ssim_map(a, b, padding=padding, as_loss=True)
        (out * weight).sum().backward()
        return out.detach(), a.grad, b.grad

    whole = run()
    monkeypatch.setattr(ssim_module, "_BAND_BYTES", 1)  # bands of window_size rows
    monkeypatch.setattr(ssim_module, "_CHUNK_CHANNELS", 4)
    assert len(ssim_module._bands(47, 30, 4, 11)) >= 4 and len(ssim_module._chunks(9)) == 3
    for a, b in zip(whole, run()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_identical_flat_images_exactly_zero() -> None:
    """Clamping σx², σy² separately leaves up to 3e-4 on a flat image in float32; Var(x − y) does not."""
    x = torch.full((2, 3, 32, 32), 0.73)
    x[1] += 1e-3 * torch.rand(3, 32, 32)
    for padding in PADDINGS:
        assert SSIM(padding=padding)(x, x.clone()).abs().max() == 0
        assert (ssim_per_item(x, x.clone(), padding=padding) == 1).all()


@pytest.mark.parametrize("padding", PADDINGS)
def test_constant_and_anticorrelated_float64(padding: str) -> None:
    for kind in ("constant", "constant_vs_image", "anticorrelated"):
        x, y = case_tensors(f"{kind}_64_b4")
        x.requires_grad_(True)
        out = SSIM(padding=padding)(x, y)
        out.mean().backward()
        assert torch.isfinite(out).all() and torch.isfinite(x.grad).all(), kind
        assert out.max() <= 2.0 + 1e-12 and out.min() >= -1e-12, kind
    x, y = case_tensors("anticorrelated_64_b4")
    assert (ssim_per_item(x, y, padding=padding) < 0).all()  # anti-correlated: SSIM below 0


def test_data_range_scales_the_constants() -> None:
    x, y = case_tensors("noisy_64_b4")
    torch.testing.assert_close(SSIM(data_range=255.0)(x * 255, y * 255), SSIM()(x, y), rtol=1e-9, atol=1e-12)


def test_masked_mix_crops_valid_map() -> None:
    load_plugins()
    x, y = case_tensors("noisy_64_b4", torch.float32)
    face = torch.zeros(4, 1, 64, 64)
    face[..., 8:56, 8:56] = 1
    pred = x.clone().requires_grad_(True)
    for padding in PADDINGS:
        result = LossMix([{"name": "ssim", "padding": padding}])(pred, y, face=face)
        result.total.backward()
        assert torch.isfinite(result.total) and torch.isfinite(pred.grad).all()
        assert pred.grad[..., :8, :].abs().max() == 0  # outside the mask: no gradient


@pytest.mark.parametrize("settings", [
    {"window_size": 10}, {"window_size": 0}, {"sigma": 0.0}, {"sigma": float("nan")}, {"k1": -0.01},
    {"k2": 0.0}, {"data_range": 0.0}, {"padding": "same"},
])
def test_invalid_settings(settings: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        SSIM(**settings)
    load_plugins()
    with pytest.raises(PluginError, match="ssim"):
        LOSSES.build("ssim", settings)


def test_too_small_images_error() -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"8×8 px are too small.*at least 11 px"):
        SSIM(padding="valid")(x, x)
    with pytest.raises(ValueError, match="at least 6 px"):
        SSIM(padding="reflect")(x[..., :5, :5], x[..., :5, :5])
    with pytest.raises(ValueError, match="differ"):
        SSIM()(x, x[..., :7])
