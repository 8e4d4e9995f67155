"""Config: TOML -> frozen dataclasses, --set overrides, unknown keys and wrong types as clear errors."""

from __future__ import annotations

import dataclasses

import pytest

from faceswap_lite.config import Config, from_dict, load_config, parse_override, to_toml
from faceswap_lite.config_reference import reference_markdown
from faceswap_lite.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_defaults_and_frozen():
    cfg = load_config()
    assert cfg.train.lr == 5e-5 and cfg.data.batch_size == 16
    assert [d["name"] for d in cfg.loss] == ["ssim", "mae"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0  # type: ignore[misc]


def test_file_and_overrides(tmp_path):
    p = write(tmp_path, '[train]\nlr = 1e-4\ndrops = [[100, 0.5]]\n[[loss]]\nname = "mae"\nweight = 2\n')
    cfg = load_config(p, ["train.steps=7", "data.workers=0", "loss.0.weight=0.25", "model.name=tiny",
                          "train.precision=bf16"])
    assert cfg.train.lr == 1e-4 and cfg.train.steps == 7 and cfg.data.workers == 0
    assert cfg.train.drops == [[100, 0.5]]
    assert cfg.loss == [{"name": "mae", "weight": 0.25}]
    assert cfg.model["name"] == "tiny" and cfg.train.precision == "bf16"


def test_unknown_key_suggests(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.lr_rate'; did you mean 'lr'\?"):
        load_config(write(tmp_path, "[train]\nlr_rate = 1\n"))
    with pytest.raises(ConfigError, match=r"unknown config key 'trian'; did you mean 'train'\?"):
        load_config(None, ["trian.lr=1"])


def test_wrong_types_and_ranges(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.steps must be int, got str 'many'"):
        load_config(None, ["train.steps=many"])
    with pytest.raises(ConfigError, match=r"data\.cache must be bool"):
        load_config(None, ["data.cache=1"])
    with pytest.raises(ConfigError, match=r"train\.precision must be one of"):
        load_config(None, ["train.precision=fp8"])
    with pytest.raises(ConfigError, match=r"data\.batch_size must be >= 1"):
        load_config(None, ["data.batch_size=0"])
    with pytest.raises(ConfigError, match=r"train\.drops\[0\] must be \[step, factor\]"):
        load_config(None, ["train.drops=[[10]]"])
    with pytest.raises(ConfigError, match=r"weight must be a number >= 0"):
        load_config(None, ['loss.0.weight="heavy"'])
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[train\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("train.lr")


@pytest.mark.parametrize("override, message", [
    ("train.lr=nan", "train.lr must be a finite number, got nan"),
    ("train.lr=inf", "train.lr must be a finite number, got inf"),
    ("mask.blur=-inf", "mask.blur must be a finite number, got -inf"),
    ("loss.0.weight=inf", "loss[0] (ssim) weight must be a number >= 0 and finite, got inf"),
    ("loss.0.weight=nan", "loss[0] (ssim) weight must be a number >= 0 and finite, got nan"),
    ("train.drops=[[10, nan]]", "train.drops[0] must be [step, factor] with an integer step >= 0 and a finite "
                                "factor > 0, got [10, nan]"),
])
def test_nan_and_inf_are_refused(override, message):
    """TOML reads nan and inf as floats; no bound stops a NaN (its comparisons are all false)."""
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert err.value.message == message


def test_nan_in_a_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"^augment\.rotation must be a finite number, got nan$"):
        load_config(write(tmp_path, "[augment]\nrotation = nan\n"))


def test_all_loss_weights_zero_is_refused(tmp_path):
    message = "every [[loss]] weight is 0: nothing would be trained; give one loss a weight > 0"
    with pytest.raises(ConfigError) as err:
        load_config(None, ["loss.0.weight=0", "loss.1.weight=0.0"])
    assert err.value.message == message
    with pytest.raises(ConfigError, match=r"every \[\[loss\]\] weight is 0"):
        load_config(write(tmp_path, '[[loss]]\nname = "mae"\nweight = 0\n'))
    assert load_config(None, ["loss.1.weight=0"]).loss[1]["weight"] == 0  # one loss at 0 is fine


def test_float_accepts_int():
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0


def test_resolved_toml_round_trips(tmp_path):
    cfg = load_config(None, ["train.drops=[[10, 0.5], [20, 0.1]]", "loss.0.window_size=7"])
    p = write(tmp_path, to_toml(cfg))
    again = load_config(p)
    assert again == cfg
    assert isinstance(from_dict({}), Config)


def test_reference_lists_every_key():
    ref = reference_markdown()
    for section in ("data", "augment", "mask", "train", "plugins"):
        for f in dataclasses.fields(getattr(Config(), section)):
            assert f"`{f.name}`" in ref, f"{section}.{f.name} missing from the reference"
