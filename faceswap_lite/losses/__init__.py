"""The loss mix and the helpers every loss plugin shares."""

from .base import ITEM, MAP, as_float, no_autocast, output_kind
from .mix import LossMix, MixResult, build_loss, loss_settings

__all__ = ["ITEM", "MAP", "LossMix", "MixResult", "as_float", "build_loss", "loss_settings", "no_autocast",
           "output_kind"]
