"""The synthetic-media mark: a provenance tag in every file convert writes, and a visible label.

Photos carry it in their metadata: PNG a ``tEXt``/``iTXt`` chunk ``Comment`` (and ``Software``),
JPEG a COM segment and the EXIF ImageDescription, WebP and TIFF the EXIF ImageDescription. Videos
carry it in the container's ``comment`` tag (:mod:`.video`). ``--watermark TEXT`` draws TEXT on
the picture as well.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, PngImagePlugin

from .. import __version__
from ..fsutil import write_atomic

PROVENANCE = f"synthetic: faces replaced by faceswap-lite convert {__version__}"
SOFTWARE = f"faceswap-lite {__version__}"
EXIF_DESCRIPTION = 0x010E  # ImageDescription (EXIF/TIFF tag 270)
EXIF_SOFTWARE = 0x0131
PHOTO_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                 ".tiff": "TIFF"}  # .bmp has no metadata: written as PNG


def output_suffix(suffix: str) -> str:
    """The suffix a converted photo gets: its own, or .png for formats that hold no metadata."""
    return suffix if suffix.lower() in PHOTO_FORMATS else ".png"


def encode_photo(rgb: np.ndarray, suffix: str) -> bytes:
    """RGB uint8 H×W×3 as a file of type ``suffix`` carrying :data:`PROVENANCE` (PNG is lossless,
    JPEG quality 95, WebP lossless)."""
    fmt = PHOTO_FORMATS.get(suffix.lower(), "PNG")
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    exif = Image.Exif()
    exif[EXIF_DESCRIPTION] = PROVENANCE
    exif[EXIF_SOFTWARE] = SOFTWARE
    buf = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", PROVENANCE)
        info.add_text("Software", SOFTWARE)
        image.save(buf, format="PNG", pnginfo=info, compress_level=3)
    elif fmt == "JPEG":
        image.save(buf, format="JPEG", quality=95, comment=PROVENANCE, exif=exif)
    elif fmt == "WEBP":
        image.save(buf, format="WEBP", lossless=True, exif=exif)
    else:
        image.save(buf, format="TIFF", exif=exif, compression="tiff_lzw")
    return buf.getvalue()


def write_photo(path: str | Path, rgb: np.ndarray) -> Path:
    """Write a marked photo atomically (a temporary name, then renamed)."""
    data = encode_photo(rgb, Path(path).suffix)
    return write_atomic(path, lambda fh: fh.write(data))


def read_photo_mark(path: str | Path) -> str | None:
    """The provenance text of a photo written by :func:`write_photo` (None when absent)."""
    with Image.open(path) as im:
        text = im.info.get("Comment") or im.info.get("comment")
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return text or im.getexif().get(EXIF_DESCRIPTION)


def draw_watermark(rgb: np.ndarray, text: str) -> None:
    """Draw ``text`` in the bottom-left corner of ``rgb`` (uint8, in place), white on a dark box,
    sized to the picture (about 1/25 of its height)."""
    h, w = rgb.shape[:2]
    scale = max(h / 25.0 / 22.0, 0.3)  # Hershey simplex glyphs are ~22 px tall at scale 1
    thick = max(1, int(round(scale * 1.5)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, th // 3)
    x0, y1 = pad, h - pad
    cv2.rectangle(rgb, (x0 - pad, y1 - th - base - pad), (min(w - 1, x0 + tw + pad), h - 1), (0, 0, 0), -1)
    cv2.putText(rgb, text, (x0, y1 - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
