"""Sources: the photos and videos extract reads, found from the paths the user gives.

Images (jpg, png, webp, bmp, tiff) are read with OpenCV (EXIF orientation applied) and videos (mp4,
mov, avi, mkv, webm) decoded with ``cv2.VideoCapture``; both are returned as RGB uint8 H×W×3 (BGR
exists only inside the OpenCV calls here).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import FaceswapLiteError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm"})

# FFmpeg prints decoder complaints about damaged files straight to stderr; extract reports them
# itself (a warning naming the file), so keep FFmpeg quiet unless the user asked otherwise.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


class InputError(FaceswapLiteError):
    """An input path that does not exist or is not a photo, video or folder."""


class SourceReadError(Exception):
    """A source file that cannot be decoded (reported as a warning; extraction goes on)."""


@dataclass(frozen=True)
class Source:
    """One photo or video to extract from.

    ``path`` is the file as found (an input path, or a folder input joined with the file's path
    inside it); ``key`` is the unique, file-name-safe prefix of its face files.
    """

    path: Path
    kind: str  # "image" or "video"
    key: str

    @property
    def name(self) -> str:
        return str(self.path)


def source_key(path: Path) -> str:
    """``<stem>-<6 hex>``: the stem made safe for file names plus a hash of the absolute path, so
    ``a/x.jpg`` and ``b/x.jpg`` get different face names, and the same file always the same."""
    stem = re.sub(r"[^\w.-]+", "_", path.stem).lstrip(".") or "source"
    digest = hashlib.sha1(path.resolve().as_posix().encode("utf-8")).hexdigest()[:6]
    return f"{stem}-{digest}"


def kind_of(path: Path) -> str | None:
    """``"image"``, ``"video"`` or None, from the file extension."""
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTENSIONS else "video" if ext in VIDEO_EXTENSIONS else None


def _inside(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def check_outside_inputs(inputs: Sequence[str | Path], output: str | Path, error: type[Exception]) -> None:
    """Raise ``error`` when the output folder is an input or holds one: its sources would be found
    among the outputs (or excluded with them). An output folder inside an input folder is fine
    (:func:`find_sources` leaves it out)."""
    out = Path(output).resolve()
    for raw in inputs:
        path = Path(raw).resolve()
        if path == out or out in path.parents:
            raise error(f"-o {str(output)!r} is (or contains) the input {str(raw)!r}: choose an output folder "
                        "outside the inputs")


def find_sources(inputs: Sequence[str | Path], exclude: str | Path | None = None) -> list[Source]:
    """Expand ``inputs`` (files and folders) into sources: files in the order given, folders
    recursively in sorted order of their relative paths, each file once. Hidden files and folders,
    files of other types inside folders, and anything under ``exclude`` (the output folder) are left
    out. Raises :class:`InputError` for a missing path or a file that is neither photo nor video.
    """
    excluded = Path(exclude).resolve() if exclude is not None else None
    found: list[Source] = []
    seen: set[Path] = set()

    def add(path: Path, kind: str) -> None:
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            found.append(Source(path=path, kind=kind, key=source_key(path)))

    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"input {str(raw)!r} does not exist")
        if path.is_dir():
            files = []
            for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")
                               and not _inside(Path(dirpath) / d, excluded)]
                files += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
            for file in sorted(files, key=lambda f: f.relative_to(path).as_posix()):
                kind = kind_of(file)
                if kind is not None and not _inside(file, excluded):
                    add(file, kind)
        else:
            kind = kind_of(path)
            if kind is None:
                raise InputError(
                    f"input {str(raw)!r} is not a photo or video faceswap-lite reads (photos: "
                    f"{', '.join(sorted(IMAGE_EXTENSIONS))}; videos: {', '.join(sorted(VIDEO_EXTENSIONS))})"
                )
            add(path, kind)
    return found


def read_image(path: str | Path) -> np.ndarray:
    """Read a photo as RGB uint8 H×W×3 (EXIF orientation applied; grey and 16-bit converted).

    Raises :class:`SourceReadError` when the file cannot be decoded.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise SourceReadError(f"cannot read ({exc.strerror or exc})") from None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise SourceReadError("not a readable image (corrupt or unsupported)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def video_frame_count(path: str | Path) -> int:
    """Frames the video's header declares (0 when unknown or unreadable)."""
    cap = cv2.VideoCapture(str(path))
    try:
        return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0) if cap.isOpened() else 0
    finally:
        cap.release()


class VideoReader:
    """Decode a video's frames in order; ``every`` keeps frames 0, every, 2·every, ...

    After iterating, ``decoded`` is the number of frames decoded (kept or not) and ``declared`` the
    header's frame count: fewer decoded than declared means the file is truncated or damaged.
    Raises :class:`SourceReadError` when the file cannot be opened at all.
    """

    def __init__(self, path: str | Path, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.path = Path(path)
        self.every = every
        self.decoded = 0
        self.declared = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise SourceReadError("not a readable video (corrupt, truncated or unsupported codec)")
            self.declared = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
            index = 0
            while True:
                if index % self.every == 0:
                    ok, bgr = cap.read()
                    if not ok or bgr is None:
                        break
                    self.decoded += 1
                    yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                else:
                    if not cap.grab():  # decodes without converting: cheaper for skipped frames
                        break
                    self.decoded += 1
                index += 1
        finally:
            cap.release()
        if self.decoded == 0:
            raise SourceReadError("no frame could be decoded (corrupt or unsupported codec)")

    @property
    def truncated(self) -> bool:
        """True when fewer frames decoded than the header declares."""
        return self.declared > 0 and self.decoded < self.declared
