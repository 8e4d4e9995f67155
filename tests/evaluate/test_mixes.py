"""--mix SPEC forms: a config file, a recipe name, an inline list with weights and settings."""

from __future__ import annotations

import pytest

from faceswap_lite.errors import ConfigError
from faceswap_lite.evaluate.mixes import MixError, parse_mixes


def test_inline_mixes_with_weights_and_settings():
    both, lp = parse_mixes(["both=ssim:1,mae", "lp=lpips:0.1:net=squeeze:pretrained_trunk=false,ssim:2"])
    assert both.losses == ({"name": "ssim", "weight": 1.0}, {"name": "mae", "weight": 1.0})
    assert lp.losses == ({"name": "lpips", "weight": 0.1, "net": "squeeze", "pretrained_trunk": False},
                         {"name": "ssim", "weight": 2.0})
    assert lp.label() == "lpips×0.1 net=squeeze pretrained_trunk=False + ssim×2"


def test_config_file_and_recipe_mixes_take_their_losses(tmp_path):
    path = tmp_path / "heavy.toml"
    path.write_text('[train]\nlr = 1.0\n[[loss]]\nname = "lpl"\nweight = 0.5\n[[loss]]\nname = "mae"\n')
    file_mix, recipe_mix = parse_mixes([f"f={path}", "r=cpu-quick"])
    assert file_mix.losses == ({"name": "lpl", "weight": 0.5}, {"name": "mae", "weight": 1.0})
    assert [d["name"] for d in recipe_mix.losses] == ["ssim", "mae"]


@pytest.mark.parametrize("items, words", [
    ([], "no --mix given"),
    (["noequals"], "expected NAME=SPEC"),
    (["report.md=mae"], "must be a folder name"),
    (["a b=mae"], "must be a folder name"),
    (["x=mae:1:nosuch=3"], "nosuch"),
    (["x=lpips:0.1:net=vgx:pretrained_trunk=false"], "net must be one of"),
    (["x=mae:-1"], "weight must be a number >= 0"),
    (["x=missing.toml"], "not found"),
])
def test_bad_mix_specs(items, words):
    with pytest.raises(MixError if items != ["x=missing.toml"] else ConfigError, match=words):
        parse_mixes(items)
