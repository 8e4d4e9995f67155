"""The loss contract, checked on every registered loss (built-ins and plugins/examples loaded as a
user's ``--plugins-dir`` would be), so a new loss is checked without anyone writing this test for it.

A loss is built by name through the registry, as the mix builds it; a loss that breaks its contract
is refused before training's first step (one line, exit 2, no checkpoint).
"""

from __future__ import annotations

import re
import textwrap

import pytest

from faceswap_lite.registry import LOSSES
from tools.synthetic_faces import make_face_set

from ..helpers import EXAMPLES, TINY_MODEL, plugin_names, run_cli, sets
from .common import (
    check_autocast_fp32,
    check_channels_last,
    check_finite_gradients,
    check_identical_zero,
    check_no_host_sync,
)

# Settings a loss is checked with where its defaults cannot run here: LPIPS's default ImageNet trunk
# is a download (a random trunk instead, as a map and per item), and 5-scale MS-SSIM needs 161 px
# (the shared cases are 64 px). Every other loss, a user's included, is checked with its defaults.
CONTRACT_SETTINGS = {
    "lpips": [{"pretrained_trunk": False}, {"pretrained_trunk": False, "spatial": False}],
    "ms_ssim": [{"scales": 3}],
    "ssim": [{"padding": "reflect"}, {"padding": "valid"}],
}
EXACT_ZERO = ("ssim", "ms_ssim")  # identical inputs give exactly 0, not merely within 1e-6

CASES = [(name, settings) for name in plugin_names("losses") for settings in CONTRACT_SETTINGS.get(name, [{}])]


def test_examples_are_among_the_checked():
    assert "charbonnier" in {name for name, _ in CASES} and "mae" in {name for name, _ in CASES}


@pytest.mark.parametrize("name, settings", CASES, ids=[f"{n}-{s}" if s else n for n, s in CASES])
def test_contract(clean_registry, name, settings):
    clean_registry.load_plugins([EXAMPLES])
    loss = LOSSES.build(name, settings)
    check_identical_zero(loss, atol=0.0 if name in EXACT_ZERO else 1e-6)  # and the shape by output kind
    check_finite_gradients(loss)
    check_autocast_fp32(loss)
    check_channels_last(loss)
    check_no_host_sync(loss)


BAD_LOSSES = textwrap.dedent("""
    import torch
    from faceswap_lite.registry import register_loss

    @register_loss("five_per_item")
    class FivePerItem(torch.nn.Module):
        output = "item"
        def forward(self, pred, target):
            return (pred - target).abs().flatten(2).mean(2)[:, :1].expand(-1, 5)

    @register_loss("odd_map")
    class OddMap(torch.nn.Module):
        output = "map"
        def forward(self, pred, target):
            return (pred - target).abs()[..., 1:, :]
""")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contract") / "A"
    make_face_set(folder, 4, size=64, seed=0)
    return folder


@pytest.mark.parametrize("name, gave, expected", [
    ("five_per_item", r"\(2, 5\)", r"expected \(2,\)"),
    ("odd_map", r"\(2, 3, 63, 64\)", r"expected \(2, 1 or 3, 64, 64\)"),
])
def test_loss_breaking_its_contract_is_refused_before_the_first_step(faces, tmp_path, name, gave, expected):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "bad.py").write_text(BAD_LOSSES)
    run = tmp_path / "run"
    res = run_cli(["train", "-A", str(faces), "-o", str(run), "--plugins-dir", str(plugins),
                   *sets(TINY_MODEL + ["data.batch_size=2", "data.workers=0", "data.val_fraction=0.0",
                                       "train.steps=2", f"loss.0.name={name}", "loss.1.weight=0"])],
                  expect=2, catch_exceptions=True)
    error = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, res.output
    assert f"loss {name!r}" in error[0]
    assert re.search(gave, error[0]) and re.search(expected, error[0]), error[0]
    assert not (run / "checkpoints").is_dir() or not any((run / "checkpoints").iterdir())
