"""``faceset`` (:mod:`faceswap_lite.sort.report`): the summary of a face set."""

from __future__ import annotations

from pathlib import Path

from .conftest import _cli


def test_faceset_summary(faceset: Path):
    code, output = _cli("faceset", str(faceset))
    assert code == 0, output
    assert "9 faces in 9 PNG files" in output and "Sources:  9 (0 videos, 9 photos)" in output
    assert "256 px, padding 0.4" in output and "1 group(s) of one person with 2+ faces (7 faces), 2 face(s) alone" in output
    assert "2 face(s) farther than 0.6" in output and "1 face(s) blurred" in output
    assert f"faceswap-lite sort {faceset} --by face" in output and "--by blur" in output
