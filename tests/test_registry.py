"""The plugin system: registration, the three ways plugins load, and every one-line error."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from faceswap_lite.errors import PluginError
from faceswap_lite.losses import LossMix
from faceswap_lite.registry import BUILT_IN, DETECTORS, LOSSES, MODELS

from .helpers import EXAMPLES, ROOT, run_cli


def test_builtins_registered(clean_registry):
    assert {"mae"} <= set(clean_registry.LOSSES.names())


def test_unknown_name_lists_suggests_and_names_folders(clean_registry, tmp_path):
    clean_registry.load_plugins([tmp_path])
    with pytest.raises(PluginError) as err:
        LOSSES.build("maee")
    msg = err.value.message
    assert "unknown loss 'maee'" in msg
    assert "did you mean 'mae'?" in msg
    assert "Available: " in msg and "mae" in msg
    assert str(tmp_path.resolve()) in msg
    assert "\n" not in msg


def test_folder_plugin_example_loads(clean_registry):
    assert "charbonnier" not in clean_registry.LOSSES
    assert clean_registry.load_plugins([EXAMPLES]) == []
    loss = LOSSES.build("charbonnier", {"eps": 0.01})
    x = torch.rand(2, 3, 16, 16)
    assert loss(x, x).abs().max() < 1e-7
    assert loss(x, x + 0.1).mean() > 0.05


def install_entry_point(registry, tmp_path, monkeypatch, dist_name: str, line: str) -> None:
    """A distribution on sys.path declaring ``line`` in the faceswap_lite.plugins entry-point group."""
    dist = tmp_path / f"{dist_name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[faceswap_lite.plugins]\n{line}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.rescan_entry_points()


def test_entry_point_plugin_loads(clean_registry, tmp_path, monkeypatch):
    install_entry_point(clean_registry, tmp_path, monkeypatch, "user_losses",
                        "charb = faceswap_lite.plugins.examples.charbonnier")
    monkeypatch.delitem(sys.modules, "faceswap_lite.plugins.examples.charbonnier", raising=False)  # import anew
    assert "charbonnier" not in clean_registry.LOSSES
    assert clean_registry.load_plugins() == []
    assert "charbonnier" in clean_registry.LOSSES
    assert LOSSES.describe("charbonnier").source == "entry point charb"
    # The same file reached through a folder as well is the same definition, not a conflict.
    assert clean_registry.load_plugins([EXAMPLES]) == []


def test_broken_entry_point_is_reported_not_fatal(clean_registry, tmp_path, monkeypatch):
    install_entry_point(clean_registry, tmp_path, monkeypatch, "broken", "broken = no_such_module_xyz")
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
        LOSSES.build("bad_syntax")
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
        LOSSES.build("charbonnier", {"epz": 0.1})
    assert "has no setting 'epz'; did you mean 'eps'?" in err.value.message


def test_wrong_value_type(clean_registry):
    clean_registry.load_plugins([EXAMPLES])
    with pytest.raises(PluginError) as err:
        LOSSES.build("charbonnier", {"eps": "small"})
    assert "setting 'eps' must be float" in err.value.message and "'small'" in err.value.message
    assert LOSSES.build("charbonnier", {"eps": 1}).eps == 1.0  # an int where a float is expected is fine


def test_literal_setting_lists_its_choices(clean_registry, tmp_path):
    (tmp_path / "modes.py").write_text(textwrap.dedent("""
        from __future__ import annotations
        from typing import TYPE_CHECKING, Literal
        import torch
        from faceswap_lite.registry import register_loss
        if TYPE_CHECKING:
            from somewhere import Unknown

        @register_loss("modes")
        class Modes(torch.nn.Module):
            def __init__(self, mode: Literal["sum", "max"] = "sum", extra: Unknown | None = None) -> None:
                super().__init__()
            def forward(self, pred, target):
                return (pred - target).abs()
    """))
    assert clean_registry.load_plugins([tmp_path]) == []
    with pytest.raises(PluginError) as err:
        LOSSES.build("modes", {"mode": "mean"})
    assert err.value.message == "loss 'modes': mode must be one of 'sum', 'max', got 'mean'"
    assert LOSSES.build("modes", {"mode": "max"}) is not None


def test_invalid_value_is_a_user_error(clean_registry):
    clean_registry.load_plugins([EXAMPLES])
    with pytest.raises(PluginError, match="eps must be > 0"):
        LOSSES.build("charbonnier", {"eps": -1.0})


def test_missing_folder_is_an_error(clean_registry, tmp_path):
    with pytest.raises(PluginError, match="does not exist"):
        clean_registry.load_plugins([tmp_path / "nope"])


# ---------------------------------------------------------------------------------------------
# One surface: build, describe and list every kind the same way.


def test_describe_gives_doc_settings_facts_and_origin(clean_registry):
    ssim = LOSSES.describe("ssim")
    assert ssim.doc.startswith("1 − SSIM") and ssim.settings["padding"] == "'reflect'"
    assert ssim.facts == {"output": "per-pixel map"} and ssim.source == BUILT_IN
    assert LOSSES.describe("ms_ssim").facts == {"output": "per-item"}
    assert DETECTORS.describe("dlib-hog").settings == {"upsample": "1", "threshold": "0.5"}
    clean_registry.load_plugins([EXAMPLES])
    assert LOSSES.describe("charbonnier").source == f"folder {EXAMPLES}"


def test_build_checks_each_kinds_contract(clean_registry, tmp_path):
    (tmp_path / "broken_kinds.py").write_text(textwrap.dedent("""
        import torch
        from faceswap_lite.registry import register_detector, register_loss, register_model

        @register_loss("odd_output")
        class OddOutput(torch.nn.Module):
            output = "pixels"

        @register_model("no_resolution")
        class NoResolution(torch.nn.Module):
            def __init__(self, sides=("a",)):
                super().__init__()
                self.sides = tuple(sides)

        @register_model("drops_sides")
        class DropsSides(torch.nn.Module):
            resolution = 64
            def __init__(self, sides=("a",)):
                super().__init__()
                self.sides = ("a",)

        @register_detector("no_landmarks")
        class NoLandmarks:
            def detect(self, rgb):
                return []
    """))
    clean_registry.load_plugins([tmp_path])
    for build, match in [(lambda: LOSSES.build("odd_output"), "loss 'odd_output': .*output must be one of"),
                         (lambda: MODELS.build("no_resolution", sides=("a",)), "int attribute 'resolution'"),
                         (lambda: MODELS.build("drops_sides", sides=("a", "b")), "must keep the sides"),
                         (lambda: DETECTORS.build("no_landmarks"), "'no_landmarks'.*landmarks\\(rgb, box\\)")]:
        with pytest.raises(PluginError, match=match) as err:
            build()
        assert "\n" not in err.value.message


def test_plugins_command_lists_every_kind_with_origin():
    out = run_cli(["plugins", "--plugins-dir", str(EXAMPLES)]).output
    for header in ("losses:", "models:", "detectors:"):
        assert header in out
    assert "  ssim  [per-pixel map]  1 − SSIM" in out and "      padding = 'reflect'" in out
    assert "(built-in)" in out and f"(folder {EXAMPLES})" in out
    assert "  original  " in out and "  dlib-hog  " in out
    only_losses = run_cli(["plugins", "losses", "--plugins-dir", str(EXAMPLES)]).output
    assert "models:" not in only_losses and "charbonnier" in only_losses
    assert run_cli(["losses", "--plugins-dir", str(EXAMPLES)]).output == only_losses


def test_building_a_builtin_detector_imports_no_torch():
    code = ("import sys\n"
            "from faceswap_lite.extract.detect import DetectorSpec, detector_for\n"
            "detector_for(DetectorSpec.check('dlib-hog', {'upsample': 0}))\n"
            "print(sorted(m for m in ('torch', 'lpips') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


def test_docs_name_only_commands_that_exist():
    from faceswap_lite.cli import main
    from faceswap_lite.config_reference import commented_toml, reference_markdown

    texts = {p.name: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    texts.update({"config reference": reference_markdown(), "default config": commented_toml()})
    for where, text in texts.items():
        for command in re.findall(r"`(?:\$ )?faceswap-lite ([a-z][a-z-]*)", text):
            assert command in main.commands, f"{where} names `faceswap-lite {command}`, which does not exist"


def test_architecture_doc_examples_are_working_plugins(clean_registry, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "architecture.md").read_text(), re.S)
    for i, code in enumerate(blocks):
        (tmp_path / f"example_{i}.py").write_text(code)
    assert clean_registry.load_plugins([tmp_path]) == []
    x = torch.rand(2, 3, 64, 64)
    assert float(LOSSES.build("l2")(x, x).abs().max()) == 0.0
    model = MODELS.build("tiny", {"width": 4}, sides=("a", "b"))
    assert model(x, "b").shape == x.shape
    assert DETECTORS.build("hog-upsampled", {"threshold": 0.3}).hog.upsample == 2
