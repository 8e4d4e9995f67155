"""The ``sae`` model plugin (SAEHD df / liae) and the mask contract it shares with Original."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceswap_lite.errors import PluginError
from faceswap_lite.plugins.models.original import Original
from faceswap_lite.plugins.models.sae import SAE
from faceswap_lite.registry import MODELS
from faceswap_lite.train.checkpoint import load_checkpoint
from tools.synthetic_faces import make_face_set

from ..helpers import TINY_SAE_DIMS, TINY_SAE_SETTINGS, model_sets, run_cli, sets

ROOT = Path(__file__).resolve().parents[2]
TINY = TINY_SAE_SETTINGS


def build_model(table: dict, sides) -> torch.nn.Module:
    return MODELS.build_table(table, sides=tuple(sides))


def tiny(arch: str, sides=("a", "b"), **kw) -> SAE:
    torch.manual_seed(0)
    return build_model({"name": "sae", **TINY, "arch": arch, **kw}, sides).eval()


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def _up(cin: int, cout: int) -> int:
    return _conv(cin, 4 * cout, 3)


def expected_params(resolution, arch, ae_dims, e_dims, d_dims, d_mask_dims, learn_mask=True,
                    double_res=True, sides=2) -> int:
    """The parameter count the module docstring's table implies, counted by hand."""
    e = [3, e_dims, 2 * e_dims, 4 * e_dims, 8 * e_dims]
    encoder = sum(_conv(a, b, 5) for a, b in zip(e[:-1], e[1:]))
    code = 8 * e_dims * (resolution // 16) ** 2
    lowest = resolution // (32 if double_res else 16)
    c = ae_dims if arch == "df" else 2 * ae_dims
    inter = code * ae_dims + ae_dims + ae_dims * lowest ** 2 * c + lowest ** 2 * c + _up(c, c)
    cin = ae_dims if arch == "df" else 4 * ae_dims
    d = [cin, 8 * d_dims, 4 * d_dims, 2 * d_dims]
    decoder = sum(_up(a, b) + 2 * _conv(b, b, 3) for a, b in zip(d[:-1], d[1:]))
    decoder += _conv(2 * d_dims, 12, 3) if double_res else _conv(2 * d_dims, 3, 1)
    if learn_mask:
        m = [cin, 8 * d_mask_dims, 4 * d_mask_dims, 2 * d_mask_dims] + ([d_mask_dims] if double_res else [])
        decoder += sum(_up(a, b) for a, b in zip(m[:-1], m[1:])) + _conv(m[-1], 1, 1)
    if arch == "df":
        return encoder + inter + sides * decoder
    return encoder + sides * inter + decoder  # inter_AB plus one inter_dst per side but the last


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", ["df", "liae"])
@pytest.mark.parametrize("sides", [("a",), ("a", "b")])
def test_shapes_range_and_dtype(arch, sides):
    model = tiny(arch, sides)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        for s in sides:
            face, mask = model.forward_with_mask(x, s)
            assert face.shape == (3, 3, 64, 64) and mask.shape == (3, 1, 64, 64)
            assert face.dtype == mask.dtype == torch.float32
            for t in (face, mask):
                assert 0.0 < float(t.min()) and float(t.max()) < 1.0
            torch.testing.assert_close(model(x, s), face)  # forward = the face of forward_with_mask
    assert model.learns_mask and model.resolution == 64 and model.sides == sides
    with pytest.raises(ValueError, match="unknown side 'c'"):
        model(x, "c")
    with pytest.raises(ValueError, match="expects N×3×64×64"):
        model(torch.rand(1, 3, 32, 32), "a")


@pytest.mark.parametrize("arch", ["df", "liae"])
def test_bf16_autocast_and_channels_last_give_float32(arch):
    model = tiny(arch).to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        face, mask = model.forward_with_mask(x, "b")
    assert face.dtype == mask.dtype == torch.float32
    with torch.no_grad():
        ref, _ = model.forward_with_mask(x, "b")
    assert (face - ref).abs().max() < 0.1  # bf16 rounding, not a different network


def test_liae_sides_use_the_right_inters():
    model = tiny("liae")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        z = model.encoder(x)
        ab, own = model.inter_ab(z), model.inter_dst["a"](z)
        face_b, mask_b = model.decoder(torch.cat([ab, ab], 1), True)
        face_a, _ = model.decoder(torch.cat([own, ab], 1), True)
        # The swap A->B (a face rendered as B, the last side) is SAEHD's inter_AB(x)‖inter_AB(x) ...
        torch.testing.assert_close(model(x, "b"), torch.sigmoid(face_b))
        torch.testing.assert_close(model.forward_with_mask(x, "b")[1], torch.sigmoid(mask_b))
        torch.testing.assert_close(model(x, "a"), torch.sigmoid(face_a))
        before_a, before_b = model(x, "a"), model(x, "b")
        for p in model.inter_dst.parameters():
            p.add_(torch.randn_like(p))
        # ... so it does not depend on inter_dst (DeepFaceLab's inter_B) at all, while A's rendering does.
        torch.testing.assert_close(model(x, "b"), before_b)
        assert not torch.allclose(model(x, "a"), before_a)
    assert set(model.inter_dst) == {"a"} and not hasattr(model, "decoders")


def test_liae_one_side_has_no_inter_dst_and_df_a_decoder_per_side():
    assert len(tiny("liae", ("a",)).inter_dst) == 0
    df = tiny("df", ("a", "b", "c"))
    assert set(df.decoders) == {"a", "b", "c"} and not hasattr(df, "inter_ab")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(df(x, "a"), df(x, "b"))


@pytest.mark.parametrize("arch", ["df", "liae"])
def test_every_parameter_trains_when_both_sides_run(arch):
    """What DDP with find_unused_parameters=False needs: both sides in one step use every weight."""
    model = tiny(arch).train()
    x = torch.rand(2, 3, 64, 64)
    total = sum(sum(t.mean() for t in model.forward_with_mask(x, s)) for s in ("a", "b"))
    total.backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_plain_forward_skips_the_mask_branch():
    model = tiny("liae").train()
    model(torch.rand(2, 3, 64, 64), "b").mean().backward()
    unused = {n.split(".")[1] for n, p in model.named_parameters() if p.grad is None}
    assert unused == {"mask", "a"}  # decoder.mask.*, inter_dst.a.*


@pytest.mark.parametrize("arch", ["df", "liae"])
@pytest.mark.parametrize("double_res", [False, True])
def test_parameter_counts(arch, double_res):
    for learn_mask in (False, True):
        model = tiny(arch, learn_mask=learn_mask, double_res=double_res)
        assert count(model) == expected_params(64, arch, 16, 4, 4, 2, learn_mask, double_res)


def test_default_size_is_saehds():
    # SAEHD's defaults (liae-ud 128, ae 256, e/d 64, mask 22): tens of millions, as DeepFaceLab's.
    default = SAE(sides=("a", "b"))
    assert count(default) == expected_params(128, "liae", 256, 64, 64, 22)
    assert 5e7 < count(default) < 1.5e8


def test_learn_mask_false_means_no_mask_head():
    model = tiny("df", learn_mask=False)
    assert not model.learns_mask
    assert not any("mask" in n for n, _ in model.named_parameters())
    face, mask = model.forward_with_mask(torch.rand(1, 3, 64, 64), "a")
    assert mask is None and face.shape == (1, 3, 64, 64)


def test_original_learn_mask():
    plain = build_model({"name": "original", "width": 1 / 32, "latent": 32}, ["a", "b"])
    assert not plain.learns_mask and plain.forward_with_mask(torch.rand(1, 3, 64, 64), "a")[1] is None
    torch.manual_seed(0)
    masked = build_model({"name": "original", "width": 1 / 32, "latent": 32, "learn_mask": True}, ["a", "b"])
    assert masked.learns_mask and isinstance(masked, Original)
    # The mask branch is an extra module: the face branch keeps the names old checkpoints use.
    assert set(masked.state_dict()) - set(plain.state_dict()) == {
        k for k in masked.state_dict() if ".mask." in k}
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        face, mask = masked.forward_with_mask(x, "b")
        torch.testing.assert_close(face, masked(x, "b"))
    assert mask.shape == (2, 1, 64, 64) and mask.dtype == torch.float32
    assert 0.0 < float(mask.min()) and float(mask.max()) < 1.0
    f128 = build_model({"name": "face128", "width": 1 / 32, "latent": 32, "learn_mask": True}, ["a"])
    assert f128.forward_with_mask(torch.rand(1, 3, 128, 128), "a")[1].shape == (1, 1, 128, 128)


@pytest.mark.parametrize("settings, message", [
    ({"arch": "dfx"}, "arch must be one of 'df', 'liae', got 'dfx'"),
    ({"resolution": 100}, "resolution must be a multiple of 32 in [64, 512]"),
    ({"resolution": 100, "double_res": False}, "resolution must be a multiple of 16 in [64, 512], got 100"),
    ({"resolution": 80}, "set double_res = false for a multiple of 16"),
    ({"resolution": 1024}, "got 1024"),
    ({"ae_dims": 2}, "ae_dims must be an int in [4, 1024], got 2"),
    ({"e_dims": 1000}, "e_dims must be an int in [2, 256], got 1000"),
    ({"d_mask_dims": 0}, "d_mask_dims must be an int in [2, 256], got 0"),
    ({"learn_mask": 1}, "setting 'learn_mask' must be bool"),
])
def test_settings_errors_are_one_line(settings, message):
    with pytest.raises(PluginError) as err:
        build_model({"name": "sae", **TINY, **settings}, ["a", "b"])
    text = str(err.value)
    assert message in text and "\n" not in text and text.startswith("model 'sae'")


def test_recipes_build(tmp_path):
    from faceswap_lite.config import load_config

    for name in ("sae-128", "sae-256", "sae-cpu-quick"):
        cfg = load_config(ROOT / "faceswap_lite" / "configs" / f"{name}.toml")
        assert cfg.model["name"] == "sae"
        assert "resolution" in cfg.model
    assert load_config(ROOT / "faceswap_lite" / "configs" / "sae-128.toml").model["arch"] == "liae"


def test_cli_trains_the_cpu_quick_twin(tmp_path):
    make_face_set(tmp_path / "A", 6, size=96, seed=0)
    make_face_set(tmp_path / "B", 6, size=96, seed=1)
    run = tmp_path / "run"
    tiny_set = [*model_sets(TINY_SAE_DIMS), "data.batch_size=2", "data.workers=0", "train.steps=2",
                "train.save_every=2", "train.preview_every=2", "train.eval_every=2", "train.log_every=1", "train.preview_faces=2"]
    args = ["train", "-A", str(tmp_path / "A"), "-B", str(tmp_path / "B"), "-o", str(run),
            "-c", str(ROOT / "faceswap_lite" / "configs" / "sae-cpu-quick.toml")]
    res = run_cli(args + sets(tiny_set))
    assert "Training finished at step 2" in res.output
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["model_spec"]["model"]["name"] == "sae"
    assert any(k.startswith("inter_dst.a.") for k in state["model"])
    reloaded = build_model(state["model_spec"]["model"], state["model_spec"]["sides"])
    reloaded.load_state_dict(state["model"])  # the checkpoint holds exactly this model's weights
