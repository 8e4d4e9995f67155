"""The one settings checker: non-finite floats are refused for config keys, options and plugin settings alike."""

from __future__ import annotations

import dataclasses

import pytest

from faceswap_lite.errors import ConfigError, PluginError
from faceswap_lite.registry import LOSSES, load_plugins
from faceswap_lite.settings import check_fields, check_value, setting


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_check_value_refuses_non_finite_floats(value):
    with pytest.raises(ConfigError) as err:
        check_value("train.lr", value, float, {"min": 0.0})
    assert err.value.message == f"train.lr must be a finite number, got {value!r}"
    with pytest.raises(ConfigError, match="must be a finite number"):
        check_value("x", value, float)  # no bound needed


def test_check_value_keeps_finite_floats_and_ints():
    assert check_value("x", 3, float) == 3.0 and isinstance(check_value("x", 3, float), float)
    assert check_value("x", 1e308, float) == 1e308


@dataclasses.dataclass
class Options:
    bounded: float = setting(1.0, "With bounds.", min=0.0)
    free: float | None = setting(None, "Without bounds.")


def test_check_fields_refuses_non_finite_floats_with_or_without_bounds():
    check_fields(Options(2.0, 5.0))
    with pytest.raises(ConfigError) as err:
        check_fields(Options(float("inf"), float("nan")), name_of=lambda n: "--" + n)
    assert err.value.message == "--bounded must be a finite number, got inf; --free must be a finite number, got nan"


def test_plugin_settings_refuse_non_finite_floats():
    load_plugins()
    with pytest.raises(PluginError, match=r"sigma.* must be a finite number, got nan"):
        LOSSES.build("ssim", {"sigma": float("nan")})
