"""The loss mix and the helpers every loss plugin shares."""

from .base import ITEM, MAP, as_float, no_autocast, output_kind
from .mix import LossMix, MixResult

__all__ = ["ITEM", "MAP", "LossMix", "MixResult", "as_float", "no_autocast", "output_kind"]
