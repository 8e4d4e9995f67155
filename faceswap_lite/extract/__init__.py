"""Extract: photos and videos -> detect -> 68 landmarks -> align -> face set.

``sources`` finds and decodes photos and videos, ``detect`` is the detector plugin API, ``align``
fits the mean-face template and cuts the crop, ``options`` declares the settings, ``worker`` does
one frame's work, ``pipeline`` plans and runs it all on :mod:`faceswap_lite.frames`' workers and
writes the face set through :mod:`faceswap_lite.faceset`.
"""

from __future__ import annotations

from .options import ExtractOptions
from .pipeline import (
    ExtractPlan,
    ExtractSummary,
    NoFacesFoundError,
    plan_extract,
    run_extract,
)

__all__ = ["ExtractOptions", "ExtractPlan", "ExtractSummary", "NoFacesFoundError", "plan_extract", "run_extract"]
