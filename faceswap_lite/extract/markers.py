"""Extract's done-markers: ``OUTPUT/.done/<source key>.json`` says a source's faces are all written.

A marker holds the source's size and mtime (a changed file is redone), the crop geometry (a face
set must not mix them), the settings, and the names of its faces. A source without a marker is
incomplete (interrupted) or being redone: its faces are removed before it is done again.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..faceset import write_atomic
from .options import ExtractOptions
from .sources import Source

DONE_DIR = ".done"  # per-source done-markers; training never reads them
MARKER_VERSION = 1


def marker_path(output: Path, source: Source) -> Path:
    return output / DONE_DIR / f"{source.key}.json"


def stat_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def read_markers(output: Path) -> dict[str, dict[str, Any]]:
    """The readable markers in ``output``, by source key (an unreadable one: its source is redone)."""
    if not (output / DONE_DIR).is_dir():
        return {}
    return {p.stem: m for p in sorted((output / DONE_DIR).glob("*.json")) if (m := _read_marker(p))}


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == MARKER_VERSION else None


_FACE_NAME = re.compile(r"^(?P<key>.+)_\d{6,}_\d{2,}\.png$")


def clear_source(output: Path, source: Source) -> None:
    """Remove a source's faces and marker before (re)doing it: a source without a marker is
    incomplete (interrupted) or being overwritten, and must not keep stale faces."""
    marker_path(output, source).unlink(missing_ok=True)
    for path in output.glob(f"{source.key}_*.png"):  # keys hold no glob characters (see source_key)
        m = _FACE_NAME.match(path.name)
        if m and m.group("key") == source.key:
            path.unlink(missing_ok=True)


def write_marker(output: Path, source: Source, options: ExtractOptions, faces: list[str], frames: int) -> None:
    data = {
        "version": MARKER_VERSION, "source": source.name, "stat": list(stat_key(source.path)),
        "geometry": options.geometry(), "frames": frames, "faces": faces,
        "settings": {k: v for k, v in asdict(options).items() if k not in ("workers", "overwrite")},
    }
    text = json.dumps(data, indent=1, default=str).encode("utf-8")
    write_atomic(marker_path(output, source), lambda fh: fh.write(text))
