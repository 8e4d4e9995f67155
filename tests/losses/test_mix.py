"""LossMix: weights, masks (zero region has no effect and no gradient), per-item vs map, errors."""

from __future__ import annotations

import textwrap

import pytest
import torch

from faceswap_lite.errors import PluginError
from faceswap_lite.losses import ITEM, MAP, LossMix
from faceswap_lite.losses.mix import centre_crop
from faceswap_lite.registry import register_loss

from .common import ops_called


@pytest.fixture
def test_losses(clean_registry):
    @register_loss("t_valid_l1")
    class ValidL1(torch.nn.Module):
        """An L1 map with a 2-px 'valid' border cropped, like valid SSIM."""

        output = MAP

        def forward(self, pred, target):
            return (pred - target).abs()[..., 2:-2, 2:-2]

    @register_loss("t_item_l2")
    class ItemL2(torch.nn.Module):
        output = ITEM

        def forward(self, pred, target):
            return ((pred - target) ** 2).flatten(1).mean(1)

    @register_loss("t_nan")
    class NaNLoss(torch.nn.Module):
        output = ITEM

        def forward(self, pred, target):
            return (pred - target).flatten(1).mean(1) * float("nan")

    @register_loss("t_float")
    class FloatLoss(torch.nn.Module):
        def forward(self, pred, target):
            return 0.5

    @register_loss("t_badshape")
    class BadShape(torch.nn.Module):
        output = ITEM

        def forward(self, pred, target):
            return (pred - target).abs()

    return clean_registry


def pair(n=2, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, s, s, generator=g), torch.rand(n, 3, s, s, generator=g)


def test_weights_and_components():
    mix = LossMix([{"name": "mae", "weight": 2.0}, {"name": "mae", "weight": 0.5}])
    x, y = pair()
    res = mix(x, y)
    base = (x - y).abs().mean()
    assert list(res.unweighted) == ["mae", "mae_2"]
    torch.testing.assert_close(res.unweighted["mae"], base)
    torch.testing.assert_close(res.weighted["mae_2"], 0.5 * base)
    torch.testing.assert_close(res.total, 2.5 * base)
    assert bool(res.finite)


def test_zero_mask_region_no_effect_no_gradient(test_losses):
    mix = LossMix([{"name": "mae"}, {"name": "t_valid_l1"}, {"name": "t_item_l2"}], eye_weight=2.0, mouth_weight=1.0)
    x, y = pair(s=16)
    face = torch.zeros(2, 1, 16, 16)
    face[..., 4:12, 4:12] = 1
    eyes = torch.zeros_like(face)
    eyes[..., 5:7, 5:11] = 1
    mouth = torch.zeros_like(face)
    mouth[..., 9:11, 6:10] = 1
    x1 = x.clone().requires_grad_(True)
    r1 = mix(x1, y, face, eyes, mouth)
    r1.total.backward()
    assert x1.grad[(face == 0).expand_as(x1)].abs().max() == 0
    assert x1.grad[(face == 1).expand_as(x1)].abs().max() > 0
    # Changing pixels outside the face changes nothing.
    x2, y2 = x.clone(), y.clone()
    outside = (face == 0).expand_as(x2)
    x2[outside] = torch.rand(int(outside.sum()))
    y2[outside] = 0.0
    r2 = mix(x2, y2, face, eyes, mouth)
    torch.testing.assert_close(r2.total, r1.total.detach())


def test_masked_mean_with_emphasis_and_crop(test_losses):
    x, y = pair(n=1, s=12)
    face = torch.ones(1, 1, 12, 12)
    eyes = torch.zeros_like(face)
    eyes[..., 3:5, 3:9] = 1
    mix = LossMix([{"name": "t_valid_l1"}], eye_weight=3.0)
    res = mix(x, y, face, eyes)
    d = (x - y).abs()[..., 2:-2, 2:-2]
    m = centre_crop(1 + 3.0 * eyes, 8, 8)
    torch.testing.assert_close(res.total, (d * m).sum() / (m.sum() * 3))


def test_nonfinite_component_makes_the_result_nonfinite(test_losses):
    mix = LossMix([{"name": "mae"}, {"name": "t_nan", "weight": 0.1}])
    x, y = pair()
    res = mix(x, y)
    assert not bool(res.finite)
    assert not torch.isfinite(res.unweighted["t_nan"]) and torch.isfinite(res.unweighted["mae"])


def test_bad_plugin_outputs_named(test_losses):
    x, y = pair()
    with pytest.raises(PluginError, match="'t_float' returned float, not a tensor"):
        LossMix([{"name": "t_float"}])(x, y)
    with pytest.raises(PluginError, match=r"'t_badshape' declares per-item output but returned shape \(2, 3, 16, 16\)"):
        LossMix([{"name": "t_badshape"}])(x, y)
    with pytest.raises(PluginError, match="no loss configured"):
        LossMix([])
    with pytest.raises(PluginError, match="has no 'name' key"):
        LossMix([{"weight": 1.0}])


def test_float32_under_autocast_and_no_host_sync():
    mix = LossMix([{"name": "mae"}])
    x, y = pair()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res = mix(x.bfloat16(), y.bfloat16())
    assert res.total.dtype == torch.float32
    ops = {o.split(".")[0] for o in ops_called(lambda a, b: mix(a, b).total, x, y)}
    assert not ops & {"_local_scalar_dense", "is_nonzero", "nonzero"}


def test_user_plugin_file_in_mix(clean_registry, tmp_path):
    (tmp_path / "huber.py").write_text(textwrap.dedent("""
        import torch
        from faceswap_lite.registry import register_loss
        @register_loss("huber_user")
        class Huber(torch.nn.Module):
            \"\"\"Huber per pixel.\"\"\"
            output = "map"
            def __init__(self, delta: float = 0.1):
                super().__init__()
                self.delta = delta
            def forward(self, pred, target):
                return torch.nn.functional.huber_loss(pred, target, reduction="none", delta=self.delta)
    """))
    clean_registry.load_plugins([tmp_path])
    mix = LossMix([{"name": "huber_user", "delta": 0.2, "weight": 3}])
    x, y = pair()
    want = torch.nn.functional.huber_loss(x, y, delta=0.2)
    torch.testing.assert_close(mix(x, y).total, 3 * want)
