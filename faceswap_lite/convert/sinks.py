"""Where a converted video goes: a video file or a folder of PNG frames, written under a hidden
temporary name and renamed by ``finish`` (``discard`` removes it), so Ctrl-C leaves nothing
half-written under the final name."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..fsutil import FULL, disk_full
from .mark import PROVENANCE, write_photo
from .video import VideoInfo, VideoSink


class VideoFileSink:
    """A video written to ``.NAME.partial.EXT`` beside its final name ``final``, renamed by :meth:`finish`.

    PyAV raises a full disk as an ``OSError`` (ENOSPC, or EFBIG over the file-size limit): it leaves
    as the one :class:`~faceswap_lite.fsutil.DiskFullError`, the partial file removed."""

    def __init__(self, final: Path, info: VideoInfo, audio_from: Path) -> None:
        self.final = final
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.final.with_name(f".{self.final.stem}.partial{self.final.suffix}")
        with self._full_disk():
            self.sink = VideoSink(self.tmp, info, PROVENANCE, audio_from=audio_from)

    def write(self, rgb: np.ndarray) -> None:
        with self._full_disk():
            self.sink.write(rgb)

    def finish(self) -> Path:
        with self._full_disk():
            self.sink.close()
        os.replace(self.tmp, self.final)
        return self.final

    @contextlib.contextmanager
    def _full_disk(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.errno not in FULL:
                raise
            written = self.tmp.stat().st_size if self.tmp.exists() else 0
            self.discard()
            raise disk_full(self.final, written) from None

    def discard(self) -> None:
        try:
            if hasattr(self, "sink"):  # not when opening it failed
                self.sink.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away
            pass
        self.tmp.unlink(missing_ok=True)


class FramesSink:
    """PNG frames (lossless, marked) in ``.NAME.partial/``, renamed to ``NAME/`` by :meth:`finish`."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.partial")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        write_photo(self.tmp / f"{self.final.name}_{self.count:06d}.png", rgb)
        self.count += 1

    def finish(self) -> Path:
        old = self.final.with_name(f".{self.final.name}.old")
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        shutil.rmtree(old, ignore_errors=True)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
