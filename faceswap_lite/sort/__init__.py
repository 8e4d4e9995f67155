"""Face-set tools: rank, group and summarise a face set (``faceswap-lite sort`` and ``faceset``).

``scan`` reads the set (skipping unusable files), ``measures`` measures one face, ``order`` ranks
the faces and writes the output folder, ``report`` summarises a set. The identity descriptors come
from :mod:`faceswap_lite.identity`.
"""

from __future__ import annotations

from .order import KEYS, Ranked, SortError
from .report import FacesetReport, faceset_report
from .run import SortResult, sort_faceset

__all__ = ["KEYS", "FacesetReport", "Ranked", "SortError", "SortResult", "faceset_report", "sort_faceset"]
