"""Masked PSNR/SSIM (faceswap_lite.train.metrics) and validation measured on the face only."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import pytorch_msssim
import torch

from faceswap_lite.config import Config
from faceswap_lite.train import metrics
from faceswap_lite.train.data import make_side_data
from faceswap_lite.train.metrics import masked_psnr, masked_ssim
from faceswap_lite.train.step import flag_nonfinite_grads
from faceswap_lite.train.validate import evaluate
from tools.synthetic_faces import make_face_set


def images(n=2, size=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    y = (x + 0.1 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
    return x, y


def test_full_mask_is_the_published_metric():
    x, y = images()
    ones = torch.ones(2, 1, 48, 48)
    ref_psnr = 10 * torch.log10(1 / (x - y).pow(2).flatten(1).mean(1))
    torch.testing.assert_close(masked_psnr(x, y, ones), ref_psnr)
    ref = pytorch_msssim.ssim(x, y, data_range=1.0, size_average=False)  # valid 11×11 Gaussian, σ 1.5
    torch.testing.assert_close(masked_ssim(x, y, ones), ref, atol=1e-5, rtol=1e-5)
    assert doctest.testmod(metrics).failed == 0


def test_only_the_face_counts():
    x, y = images()
    mask = torch.zeros(2, 1, 48, 48)
    mask[..., 8:40, 8:40] = 1.0
    other = y.clone()
    other[..., :8, :] = torch.rand_like(other[..., :8, :])  # change only outside the mask
    torch.testing.assert_close(masked_psnr(x, other, mask), masked_psnr(x, y, mask))
    torch.testing.assert_close(masked_ssim(x, other, mask), masked_ssim(x, y, mask))
    # Windows reaching over the mask edge do not count: a change just outside it leaves SSIM alone.
    near = y.clone()
    near[..., 6:8, 8:40] = 0.0
    torch.testing.assert_close(masked_ssim(x, near, mask), masked_ssim(x, y, mask))
    assert masked_ssim(x, near, torch.ones(2, 1, 48, 48))[0] != masked_ssim(x, y, torch.ones(2, 1, 48, 48))[0]
    # A change inside the face lowers both; an empty eroded mask is NaN, not a number.
    worse = y.clone()
    worse[..., 20:30, 20:30] = 1.0 - worse[..., 20:30, 20:30]
    assert (masked_psnr(x, worse, mask) < masked_psnr(x, y, mask)).all()
    assert (masked_ssim(x, worse, mask) < masked_ssim(x, y, mask)).all()
    tiny = torch.zeros(2, 1, 48, 48)
    tiny[..., 20:25, 20:25] = 1
    assert torch.isnan(masked_ssim(x, y, tiny)).all()
    with pytest.raises(ValueError, match="mask"):
        masked_psnr(x, y, mask[:, :, :10])


class BackgroundOnly(torch.nn.Module):
    """Returns the face unchanged and the crop's outer band grey: a model perfect on the face."""

    def __init__(self, band: int) -> None:
        super().__init__()
        self.band = band

    def forward(self, x, side):
        out = x.clone()
        b = self.band
        out[..., :b, :] = out[..., -b:, :] = out[..., :, :b] = out[..., :, -b:] = 0.5
        return out


def test_validation_measures_the_face_not_the_background(tmp_path: Path):
    faces = tmp_path / "faces"
    make_face_set(faces, 12, size=64, seed=3)
    cfg = Config()
    data = {"a": make_side_data(faces, cfg, 64, side="a", seed=0)}
    assert data["a"].val_batch() is not None
    val = evaluate(BackgroundOnly(4), data, torch.device("cpu"))
    # The background changed, the face did not: the face metrics are perfect (whole-crop PSNR is not).
    assert val["val/a/psnr"] == pytest.approx(100.0) and val["val/a/ssim"] == pytest.approx(1.0)
    x = data["a"].val_batch()["target"]
    whole = 10 * torch.log10(1 / (BackgroundOnly(4)(x, "a") - x).pow(2).flatten(1).mean(1)).mean()
    assert whole < 40


def test_private_torch_check_still_flags_nonfinite_gradients():
    """step.flag_nonfinite_grads wraps torch._amp_foreach_non_finite_check_and_unscale_: if torch
    drops or changes it, this fails (the training loop's skip of non-finite steps depends on it)."""
    grads = [torch.ones(3), torch.full((2, 2), 2.0)]
    flag = torch.zeros(())
    flag_nonfinite_grads(grads, flag, torch.ones(()))
    assert flag.item() == 0.0 and grads[1].eq(2.0).all()  # checks only, scale 1
    for bad in (float("inf"), float("nan")):
        grads[0][1] = bad
        flag = torch.zeros(())
        flag_nonfinite_grads(grads, flag, torch.ones(()))
        assert flag.item() == 1.0
