"""LPIPS: equal to the ``lpips`` package for the same weights; weights offline; the shared contract checks.

No test downloads anything: trunks are the package's own networks with a seeded random init
(``lpips.LPIPS(pnet_rand=True)``, see tools/references/lpips_weights.py) or state dicts saved by the test, and the
linear layers are the v0.1 files shipped in the ``lpips`` wheel.
"""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import lpips
import numpy as np
import pytest
import torch
import torchvision

from faceswap_lite.errors import FaceswapLiteError, PluginError
from faceswap_lite.losses import ITEM, MAP, LossMix, output_kind
from faceswap_lite.plugins.losses.lpips import LIN_DIR, LPIPS, MIN_SIZE, trunk_cache_file
from faceswap_lite.registry import LOSSES
from tools.references.cases import KINDS
from tools.references.lpips_weights import same_fingerprint, save_trunk, seeded_peer, trunk_fingerprint

from .common import (
    case_tensors,
    compare_to_refs,
    load_refs,
)

DTYPES = {"float64": torch.float64, "float32": torch.float32}
RTOL = {"float64": 1e-6, "float32": 1e-5}  # against the live peer, same machine
REF_RTOL = {"float64": 1e-6, "float32": 1e-4}  # against stored values (float32 convs differ across CPUs)
# Live comparisons use the first two items of the batch-4 cases (identical and constant pairs are
# exactly 0 for both, checked in test_identical_is_exactly_zero); stored values add larger sizes.
ALEX_CASES = [f"{k}_64_b4" for k in KINDS if k not in ("identical", "constant")] + ["noisy_99_b1",
                                                                                    "shifted_99_b1"]
REF_CASES = ["noisy_64_b4", "identical_64_b4", "shifted_99_b1", "blurred_176_b1"]


class Alex:
    """The seeded peer, its trunk saved to a file, and our loss loaded from that file (the user path)."""

    def __init__(self, tmp_path: Path) -> None:
        self.peer32 = seeded_peer("alex")
        self.peer64 = copy.deepcopy(self.peer32).double()
        self.trunk_file = save_trunk(self.peer32, tmp_path / "alex_trunk.pth")
        self.map = LPIPS(net="alex", trunk_weights=str(self.trunk_file))
        self.item = LPIPS(net="alex", spatial=False, trunk_weights=str(self.trunk_file))

    def peer(self, dtype: torch.dtype) -> lpips.LPIPS:
        return self.peer64 if dtype == torch.float64 else self.peer32


@pytest.fixture(scope="module")
def alex(tmp_path_factory: pytest.TempPathFactory) -> Alex:
    return Alex(tmp_path_factory.mktemp("lpips"))


@pytest.fixture(scope="module")
def tv_trunk() -> dict[str, torch.Tensor]:
    """A torchvision-format AlexNet trunk state dict (``features.i.*``) drawn locally with a fixed seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = torchvision.models.alexnet(weights=None)
    return {f"features.{k}": v for k, v in model.features.state_dict().items()}


def peer_map(peer: lpips.LPIPS, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The package's spatial map (``spatial=True``) from the same peer object."""
    peer.spatial = True
    try:
        return peer(x, y, normalize=True)
    finally:
        peer.spatial = False


def assert_trunk_equal(loss: LPIPS, state: dict[str, torch.Tensor]) -> None:
    ours = loss.core.net.state_dict()
    assert len(ours) == len(state)
    for (key, value), expected in zip(ours.items(), state.values()):
        assert torch.equal(value, expected), key


# --- the shared contract -----------------------------------------------------------------------


def test_output_kind_follows_spatial(alex: Alex) -> None:
    assert output_kind(alex.map) == MAP and output_kind(alex.item) == ITEM


def test_identical_is_exactly_zero(alex: Alex) -> None:
    for name in ("identical_64_b4", "constant_64_b4"):
        for dtype in DTYPES.values():
            x, y = (t[:2] for t in case_tensors(name, dtype))
            assert torch.equal(alex.item(x, y), torch.zeros(x.shape[0], dtype=dtype)), name
            assert not alex.map(x, y).any(), name


def test_training_path_equals_batched_path(alex: Alex) -> None:
    # Only pred needs a gradient: the target's features are computed without autograd (two trunk
    # calls). Both need one, or none: one batched call. Same value, same gradient for pred.
    for loss in (alex.map, alex.item):
        x, y = (t[:2].clone() for t in case_tensors("shifted_64_b4", torch.float64))
        with torch.no_grad():
            batched = loss(x, y)
        x.requires_grad_(True)
        split = loss(x, y)
        split.sum().backward()
        grad_split, x.grad = x.grad, None
        y.requires_grad_(True)
        both = loss(x, y)
        both.sum().backward()
        torch.testing.assert_close(split.detach(), batched, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(both.detach(), batched, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(grad_split, x.grad, rtol=1e-10, atol=1e-15)
        assert torch.isfinite(y.grad).all()
    x, _ = (t[:2] for t in case_tensors("noisy_64_b4", torch.float32))
    assert not alex.map(x.clone().requires_grad_(True), x.clone()).any()  # identical, training path


def test_gradcheck_smallest_input(alex: Alex) -> None:
    # 31 px is the smallest AlexNet takes; fast mode (a random projection of the Jacobian, checked
    # against finite differences) keeps it under a second where the full Jacobian needs ~6000 calls.
    g = torch.Generator().manual_seed(0)
    s = MIN_SIZE["alex"]
    x = torch.rand(1, 3, s, s, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 3, s, s, generator=g, dtype=torch.float64)
    for loss in (alex.map, alex.item):
        assert torch.autograd.gradcheck(lambda a, loss=loss: loss(a, y), (x,), eps=1e-6, atol=1e-5, rtol=1e-3,
                                        fast_mode=True)
    # Full Jacobian on a 2×2 patch of the image (12 inputs): every entry, not a projection.
    patch = x[:, :, 10:12, 10:12].detach().clone().requires_grad_(True)

    def with_patch(p: torch.Tensor) -> torch.Tensor:
        img = x.detach().clone()
        img[:, :, 10:12, 10:12] = p
        return alex.item(img, y)

    assert torch.autograd.gradcheck(with_patch, (patch,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_zero_features_give_finite_gradient(alex: Alex, tmp_path: Path) -> None:
    # An all-zero trunk makes every feature vector 0: the normalisation f / (‖f‖ + eps) must not give NaN.
    zeros = {k: torch.zeros_like(v) for k, v in alex.peer32.net.state_dict().items()}
    torch.save(zeros, tmp_path / "zero_trunk.pth")
    loss = LPIPS(net="alex", trunk_weights=str(tmp_path / "zero_trunk.pth"))
    x, y = (t[:1].clone() for t in case_tensors("noisy_64_b4", torch.float32))
    x.requires_grad_(True)
    out = loss(x, y)
    out.sum().backward()
    assert not out.any() and torch.isfinite(x.grad).all()


def test_input_checks(alex: Alex) -> None:
    s = MIN_SIZE["alex"] - 1
    with pytest.raises(ValueError, match="at least 31"):
        alex.map(torch.rand(1, 3, s, 64), torch.rand(1, 3, s, 64))
    with pytest.raises(ValueError, match="same shape"):
        alex.map(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 32))


# --- equal to the lpips package ------------------------------------------------------------------


@pytest.mark.parametrize("dtype_key", list(DTYPES))
def test_alex_matches_peer(alex: Alex, dtype_key: str) -> None:
    dtype, rtol = DTYPES[dtype_key], RTOL[dtype_key]
    worst = 0.0
    for name in ALEX_CASES:
        x, y = (t[:2] for t in case_tensors(name, dtype))
        with torch.no_grad():
            theirs = alex.peer(dtype)(x, y, normalize=True).flatten()
            ours = alex.item(x, y)  # spatial=False: forward is per_item
        assert ours.dtype == dtype
        torch.testing.assert_close(ours, theirs, rtol=rtol, atol=1e-12, msg=lambda m, n=name: f"{n}: {m}")
        nz = theirs != 0
        worst = max(worst, ((ours - theirs)[nz] / theirs[nz]).abs().max().item() if nz.any() else 0.0)
    print(f"alex {dtype_key}: max relative error vs lpips {worst:.2e}")


@pytest.mark.parametrize("dtype_key", list(DTYPES))
def test_alex_map_matches_peer_spatial(alex: Alex, dtype_key: str) -> None:
    dtype, rtol = DTYPES[dtype_key], RTOL[dtype_key]
    for name in ("noisy_64_b4", "noisy_99_b1"):
        x, y = (t[:2] for t in case_tensors(name, dtype))
        with torch.no_grad():
            theirs = peer_map(alex.peer(dtype), x, y)
            ours = alex.map(x, y)
            item = alex.map.per_item(x, y)
        assert ours.shape == (x.shape[0], 1, *x.shape[-2:]) and ours.dtype == dtype
        torch.testing.assert_close(ours, theirs, rtol=rtol, atol=rtol * theirs.abs().max().item())
        # The map's mean is close to the canonical value (bilinear upsampling is not mean-preserving).
        torch.testing.assert_close(ours.mean(dim=(1, 2, 3)), item, rtol=2e-3, atol=0)


@pytest.mark.parametrize("net", ["squeeze", "vgg"])
def test_other_nets_match_peer(net: str, tmp_path: Path) -> None:
    peer32 = seeded_peer(net)
    peer64 = copy.deepcopy(peer32).double()
    ours = LPIPS(net=net, trunk_weights=str(save_trunk(peer32, tmp_path / f"{net}.pth")))
    refs = load_refs("lpips")["nets"][net]
    same_trunk = same_fingerprint(refs["trunk_fingerprint"], trunk_fingerprint(peer32.net))
    for dtype_key, dtype in DTYPES.items():
        x, y = (t[:1] for t in case_tensors("noisy_64_b4", dtype))  # 1×3×64×64
        peer = peer64 if dtype == torch.float64 else peer32
        with torch.no_grad():
            theirs, ours_item = peer(x, y, normalize=True).flatten(), ours.per_item(x, y)
            if dtype == torch.float32:  # the map code is shared with alex, checked there in both dtypes
                theirs_map, ours_map = peer_map(peer, x, y), ours(x, y)
                torch.testing.assert_close(ours_map, theirs_map, rtol=RTOL[dtype_key],
                                           atol=RTOL[dtype_key] * theirs_map.abs().max().item())
        torch.testing.assert_close(ours_item, theirs, rtol=RTOL[dtype_key], atol=0)
        if same_trunk:
            stored = refs["cases"]["noisy_64_b4"][dtype_key][:1]
            np.testing.assert_allclose(ours_item.double().numpy(), stored, rtol=REF_RTOL[dtype_key])


def test_stored_references(alex: Alex) -> None:
    """Values stored by tools/references/lpips.py from the same seeded trunk (the peer is not needed)."""
    refs = load_refs("lpips")
    if not same_fingerprint(refs["trunk_fingerprint"], trunk_fingerprint(alex.peer32.net)):
        pytest.skip(f"torch.manual_seed({refs['seed']}) draws another AlexNet trunk here than when the "
                    f"references were stored ({refs['trunk']}); the live comparison with lpips still runs")
    for dtype_key in DTYPES:
        compare_to_refs(alex.item.per_item, refs, dtype_key, rtol=REF_RTOL[dtype_key], atol=1e-12,
                        cases=REF_CASES)
        compare_to_refs(lambda x, y: alex.map(x, y).mean(dim=(1, 2, 3)), refs["map_mean"], dtype_key,
                        rtol=REF_RTOL[dtype_key], atol=1e-12, cases=["shifted_99_b1"])


# --- weights, offline ---------------------------------------------------------------------------


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """An empty torch hub folder under TORCH_HOME and no network: name resolution fails at once.

    torch.hub's real ``download_url_to_file`` runs (wrapped to count calls) and fails the way it does
    on a machine without internet (URLError), however the CI machine's network is set up.
    """
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case something called torch.hub.set_dir

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    calls: list[str] = []
    real_download = torch.hub.download_url_to_file

    def counting_download(url: str, dst: str, *args: Any, **kwargs: Any) -> None:
        calls.append(url)
        real_download(url, dst, *args, **kwargs)

    monkeypatch.setattr(torch.hub, "download_url_to_file", counting_download)
    return tmp_path / "torch" / "hub" / "checkpoints", calls


@pytest.mark.parametrize("net, file", [("alex", "alexnet-owt-7be5be79.pth"), ("vgg", "vgg16-397923af.pth"),
                                       ("squeeze", "squeezenet1_1-b8a52dc0.pth")])
def test_missing_trunk_weights_error(offline_hub: tuple[Path, list[str]], net: str, file: str) -> None:
    folder, calls = offline_hub
    assert trunk_cache_file(net) == folder / file
    with pytest.raises(PluginError) as info:
        LOSSES.build("lpips", {"net": net})
    msg = info.value.format_message()
    print(msg)
    assert calls == [f"https://download.pytorch.org/models/{file}"]
    assert "\n" not in msg
    assert f"{file} is not in {folder} " in msg
    assert f"Copy {file} into {folder}" in msg
    assert "URLError" in msg and "TORCH_HOME" in msg and f'trunk_weights = "/path/to/{file}"' in msg
    assert isinstance(info.value, FaceswapLiteError)
    assert not list(folder.iterdir())  # no partial download left behind


def test_available_hook_names_the_missing_weights(offline_hub: tuple[Path, list[str]]) -> None:
    folder, calls = offline_hub
    reason = LPIPS.available({"net": "vgg"})
    assert reason is not None and "\n" not in reason and f"vgg16-397923af.pth are not in {folder}" in reason
    assert LPIPS.available({"pretrained_trunk": False}) is None
    assert LPIPS.available({"trunk_weights": "/data/alexnet.pth"}) is None
    assert calls == []  # asking downloads nothing


def test_trunk_from_hub_cache_without_download(offline_hub: tuple[Path, list[str]],
                                                tv_trunk: dict[str, torch.Tensor]) -> None:
    folder, calls = offline_hub
    folder.mkdir(parents=True)
    # The trunk with a stand-in classifier (the real file's 233 MB are mostly the classifier).
    torch.save({**tv_trunk, "classifier.1.weight": torch.zeros(4, 4)}, folder / "alexnet-owt-7be5be79.pth")
    loss = LOSSES.build("lpips")
    assert calls == []
    assert_trunk_equal(loss, tv_trunk)


def test_trunk_weights_file_formats(alex: Alex, tv_trunk: dict[str, torch.Tensor], tmp_path: Path) -> None:
    # torchvision keys (features.i.weight)
    torch.save(tv_trunk, tmp_path / "tv.pth")
    assert_trunk_equal(LPIPS(trunk_weights=str(tmp_path / "tv.pth")), tv_trunk)
    # a whole lpips.LPIPS state dict (net.slice_k.i.weight, lin..., scaling_layer...)
    torch.save(alex.peer32.state_dict(), tmp_path / "whole.pth")
    loss = LPIPS(trunk_weights=str(tmp_path / "whole.pth"))
    assert_trunk_equal(loss, alex.peer32.net.state_dict())
    x, y = case_tensors("shifted_64_b4", torch.float32)
    torch.testing.assert_close(loss.per_item(x, y), alex.item.per_item(x, y), rtol=0, atol=0)


def test_bad_weight_files(alex: Alex, tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="does not exist"):
        LOSSES.build("lpips", {"trunk_weights": str(tmp_path / "nope.pth")})
    torch.save(torch.load(LIN_DIR / "alex.pth", map_location="cpu"), tmp_path / "lins.pth")
    with pytest.raises(PluginError, match="not a trunk state dict.*features.0.weight"):
        LOSSES.build("lpips", {"trunk_weights": str(tmp_path / "lins.pth")})
    with pytest.raises(PluginError, match="not a trunk state dict for this net: no features.3.squeeze.weight"):
        LOSSES.build("lpips", {"net": "squeeze", "trunk_weights": str(alex.trunk_file)})
    wrong = dict(alex.peer32.net.state_dict())
    wrong["slice1.0.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(PluginError, match="do not fit the alex net"):
        LOSSES.build("lpips", {"trunk_weights": str(tmp_path / "wrong.pth")})
    with pytest.raises(PluginError, match="no linear layer"):
        LOSSES.build("lpips", {"trunk_weights": str(alex.trunk_file), "lin_weights": str(alex.trunk_file)})
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(PluginError, match="cannot read trunk weights"):
        LOSSES.build("lpips", {"trunk_weights": str(tmp_path / "junk.pth")})


def test_lin_weights_setting(alex: Alex, tmp_path: Path) -> None:
    doubled = {k: 2 * v for k, v in torch.load(LIN_DIR / "alex.pth", map_location="cpu").items()}
    torch.save(doubled, tmp_path / "lin2.pth")
    loss = LPIPS(trunk_weights=str(alex.trunk_file), lin_weights=str(tmp_path / "lin2.pth"))
    x, y = case_tensors("noisy_64_b4", torch.float64)
    torch.testing.assert_close(loss.per_item(x, y), 2 * alex.item.per_item(x, y), rtol=1e-12, atol=0)


def test_random_trunk_is_the_peers(alex: Alex) -> None:
    # pretrained_trunk = false draws the trunk as lpips.LPIPS(pnet_rand=True) does, from the same RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        loss = LPIPS(pretrained_trunk=False)
    assert_trunk_equal(loss, alex.peer32.net.state_dict())


def test_settings_errors() -> None:
    with pytest.raises(PluginError, match="net must be one of 'alex', 'vgg', 'squeeze'"):
        LOSSES.build("lpips", {"net": "alexx"})
    with pytest.raises(PluginError, match="not both"):
        LOSSES.build("lpips", {"trunk_weights": "x.pth", "pretrained_trunk": False})


# --- in the mix -----------------------------------------------------------------------------------


def test_frozen_and_eval_inside_train_mode_mix(alex: Alex) -> None:
    mix = LossMix([{"name": "lpips", "trunk_weights": str(alex.trunk_file)},
                   {"name": "lpips", "spatial": False, "trunk_weights": str(alex.trunk_file)}])
    mix.train()
    for loss in mix.losses:
        assert not any(m.training for m in loss.modules())
        assert not any(p.requires_grad for p in loss.parameters())
    x, y = (t[:2].clone() for t in case_tensors("noisy_64_b4", torch.float32))
    face = torch.zeros(2, 1, 64, 64)
    face[..., 8:56, 8:56] = 1.0
    x.requires_grad_(True)
    result = mix(x, y, face=face)
    result.total.backward()
    assert torch.isfinite(x.grad).all() and x.grad[..., :8, :].abs().max() == 0  # nothing outside the face
    assert all(p.grad is None for p in mix.parameters())
    with torch.no_grad():
        m = alex.map(x * face, y * face)
        expected_map = (m * face).sum() / face.sum()
        expected_item = alex.item(x * face, y * face).mean()
    torch.testing.assert_close(result.unweighted["lpips"], expected_map)
    torch.testing.assert_close(result.unweighted["lpips_2"], expected_item)
