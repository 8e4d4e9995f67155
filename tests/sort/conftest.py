"""The face set the sort tests share: extracted from the real photos in tests/photos.

Besides the photos as they are, the set holds faces made from them here so the answer is known:
Obama blurred (a Gaussian of σ = 3 px), obama3 mirrored (the same turn of the head, the other way),
Obama turned 15° clockwise, and Obama at half size.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap_lite.extract import ExtractOptions, plan_extract, run_extract
from faceswap_lite.sort import sort_faceset

from ..helpers import PHOTOS, run_cli

OBAMA = ("obama", "obama2", "obama3", "obama-blur", "obama3-mirror", "obama-roll15", "obama-half")


def _rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)  # OpenCV: positive is anticlockwise
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def faceset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    photos = tmp_path_factory.mktemp("photos")
    for p in PHOTOS.glob("*.jpg"):
        shutil.copy(p, photos / p.name)
    obama, obama3 = cv2.imread(str(PHOTOS / "obama.jpg")), cv2.imread(str(PHOTOS / "obama3.jpg"))
    cv2.imwrite(str(photos / "obama-blur.png"), cv2.GaussianBlur(obama, (0, 0), 3))
    cv2.imwrite(str(photos / "obama3-mirror.png"), obama3[:, ::-1])
    cv2.imwrite(str(photos / "obama-roll15.png"), _rotate(obama, 15))
    cv2.imwrite(str(photos / "obama-half.png"), cv2.resize(obama, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    out = tmp_path_factory.mktemp("set") / "faces"
    summary = run_extract(plan_extract([str(photos)], out, ExtractOptions(workers=1)))
    assert summary.faces_written == 9, summary.lines()
    return out


def _stem(name: str) -> str:
    """The source photo's stem from a face name (``00001_obama-2da66a_000000_00.png`` -> ``obama``)."""
    name = name.split("_", 1)[1] if name[:5].isdigit() else name
    return name.rsplit("-", 1)[0]


def _order(folder: Path, by: str, **kw) -> list[tuple[str, float]]:
    result = sort_faceset(folder, by, dry_run=True, **kw)
    return [(_stem(r.face.path.name), r.value) for r in result.ranked]


def _cli(*args: str) -> tuple[int, str]:
    result = run_cli(list(args), expect=None)
    return result.exit_code, result.output
