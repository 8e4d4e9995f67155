"""The plugin system: registration, the three ways plugins load, and every one-line error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from faceswap_lite.errors import PluginError
from faceswap_lite.losses import LossMix, build_loss

EXAMPLES = Path(__file__).resolve().parents[1] / "plugins" / "examples"


def test_builtins_registered(clean_registry):
    assert {"mae"} <= set(clean_registry.LOSSES.names())


def test_unknown_name_lists_suggests_and_names_folders(clean_registry, tmp_path):
    clean_registry.load_plugins([tmp_path])
    with pytest.raises(PluginError) as err:
        build_loss("maee")
    msg = err.value.message
    assert "unknown loss 'maee'" in msg
    assert "did you mean 'mae'?" in msg
    assert "Available: " in msg and "mae" in msg
    assert str(tmp_path.resolve()) in msg
    assert "\n" not in msg


def test_folder_plugin_example_loads(clean_registry):
    assert "charbonnier" not in clean_registry.LOSSES
    assert clean_registry.load_plugins([EXAMPLES]) == []
    loss = build_loss("charbonnier", eps=0.01)
    x = torch.rand(2, 3, 16, 16)
    assert loss(x, x).abs().max() < 1e-7
    assert loss(x, x + 0.1).mean() > 0.05


def test_entry_point_plugin_loads(clean_registry, tmp_path, monkeypatch):
    dist = tmp_path / "user_losses-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: user-losses\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[faceswap_lite.plugins]\ncharbonnier = faceswap_lite.plugins.examples.charbonnier\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    clean_registry._STATE.entry_points_loaded = False
    assert "charbonnier" not in clean_registry.LOSSES
    assert clean_registry.load_plugins() == []
    assert "charbonnier" in clean_registry.LOSSES
    # The same file reached through a folder as well is the same definition, not a conflict.
    assert clean_registry.load_plugins([EXAMPLES]) == []


def test_broken_entry_point_is_reported_not_fatal(clean_registry, tmp_path, monkeypatch):
    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[faceswap_lite.plugins]\nbroken = no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    clean_registry._STATE.entry_points_loaded = False
    failures = clean_registry.load_plugins()
    assert any("no_such_module_xyz" in f.source and "ModuleNotFoundError" in f.error for f in failures)
    assert "mae" in clean_registry.LOSSES


def test_config_plugin_dirs_load(clean_registry, tmp_path):
    from faceswap_lite.config import load_config

    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text(textwrap.dedent(f"""
        [plugins]
        dirs = ["{EXAMPLES.as_posix()}"]
        [[loss]]
        name = "charbonnier"
        weight = 2.0
        eps = 0.01
    """))
    cfg = load_config(cfg_file)
    clean_registry.load_plugins(cfg.plugins.dirs)
    mix = LossMix(cfg.loss)
    x = torch.rand(1, 3, 8, 8)
    res = mix(x, x * 0.5)
    assert set(res.unweighted) == {"charbonnier"}
    torch.testing.assert_close(res.total, 2.0 * res.unweighted["charbonnier"])


def test_failing_plugin_file_named_and_others_load(clean_registry, tmp_path):
    (tmp_path / "bad_syntax.py").write_text("def oops(:\n")
    (tmp_path / "bad_import.py").write_text("import not_a_real_module_qq\n")
    (tmp_path / "good.py").write_text(textwrap.dedent("""
        import torch
        from faceswap_lite.registry import register_loss
        @register_loss("good_l2")
        class GoodL2(torch.nn.Module):
            output = "map"
            def forward(self, pred, target):
                return (pred.float() - target.float()) ** 2
    """))
    failures = clean_registry.load_plugins([tmp_path])
    by_file = {Path(f.source).name: f.error for f in failures}
    assert by_file["bad_syntax.py"].startswith("SyntaxError")
    assert by_file["bad_import.py"].startswith("ModuleNotFoundError") and "not_a_real_module_qq" in by_file["bad_import.py"]
    assert "good_l2" in clean_registry.LOSSES and "mae" in clean_registry.LOSSES
    with pytest.raises(PluginError) as err:
        build_loss("bad_syntax")
    assert "bad_syntax.py" in err.value.message and "failed to load" in err.value.message


def test_same_name_different_class_is_an_error(clean_registry, tmp_path):
    (tmp_path / "clash.py").write_text(textwrap.dedent("""
        import torch
        from faceswap_lite.registry import register_loss
        @register_loss("mae")
        class MyMAE(torch.nn.Module):
            def forward(self, pred, target):
                return (pred - target).abs()
    """))
    failures = clean_registry.load_plugins([tmp_path])
    assert len(failures) == 1
    assert "'mae' is already registered by" in failures[0].error and "clash.py" in failures[0].error
    assert clean_registry.LOSSES.get("mae").__module__.endswith("plugins.losses.mae")


def test_setting_typo_suggests_key(clean_registry):
    clean_registry.load_plugins([EXAMPLES])
    with pytest.raises(PluginError) as err:
        build_loss("charbonnier", epz=0.1)
    assert "has no setting 'epz'; did you mean 'eps'?" in err.value.message


def test_wrong_value_type(clean_registry):
    clean_registry.load_plugins([EXAMPLES])
    with pytest.raises(PluginError) as err:
        build_loss("charbonnier", eps="small")
    assert "setting 'eps' must be float" in err.value.message and "'small'" in err.value.message
    assert build_loss("charbonnier", eps=1).eps == 1.0  # an int where a float is expected is fine


def test_invalid_value_is_a_user_error(clean_registry):
    clean_registry.load_plugins([EXAMPLES])
    with pytest.raises(PluginError, match="eps must be > 0"):
        build_loss("charbonnier", eps=-1.0)


def test_missing_folder_is_an_error(clean_registry, tmp_path):
    with pytest.raises(PluginError, match="does not exist"):
        clean_registry.load_plugins([tmp_path / "nope"])
