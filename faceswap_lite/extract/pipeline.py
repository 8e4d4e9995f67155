"""The extract pipeline: sources -> detect -> landmarks -> align -> identity -> face set, in parallel.

Two steps, so the CLI can show a progress bar with a total and nothing is written when the request
is wrong:

>>> plan = plan_extract(["photos/", "clip.mp4"], "faces/", ExtractOptions(workers=2))  # doctest: +SKIP
>>> summary = run_extract(plan, progress=lambda frames, faces: None)                   # doctest: +SKIP

``plan_extract`` checks everything it can before a byte is written (inputs exist, output writable,
detector and settings valid, crop geometry consistent with faces already in the output, each
``--identity`` reference holds one face) and raises
:class:`~faceswap_lite.errors.FaceswapLiteError` subclasses. ``run_extract`` never prints: it logs
warnings (an unreadable photo, a truncated video) and returns an :class:`ExtractSummary`.

Parallelism: photos are read by the workers; videos are decoded in order by the main process and
their frames handed to the workers (frame indices are exact, no seeking). Results are consumed in
submission order and face names depend only on the source and frame, so the output is the same for
any number of workers. Workers are ``spawn``-ed processes that build their own detector (dlib objects
cannot be pickled) and ignore Ctrl-C: the main process stops submitting, lets the frames in flight
finish (each face is written to a temporary name, then renamed) and exits; a source's done-marker
is written only once all its faces are, so a re-run redoes the interrupted source.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import re
import signal
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import identity
from ..errors import FaceswapLiteError
from ..faceset import FaceMeta, write_atomic, write_face
from ..fsutil import check_output_folder
from ..identity import DEFAULT_THRESHOLD as DEFAULT_IDENTITY_THRESHOLD
from ..parallel import Done, usable_cpus
from .align import (
    DEFAULT_CENTERING,
    DEFAULT_MAX_FIT_ERROR,
    DEFAULT_PADDING,
    DEFAULT_SIZE,
    align_face,
    template_in_crop,
)
from .detect import DEFAULT_DETECTOR, DetectorSpec, detector_for, face_landmarks, find_faces
from .sources import Source, SourceReadError, VideoReader, find_sources, read_image, video_frame_count

log = logging.getLogger(__name__)

DONE_DIR = ".done"  # per-source done-markers; training never reads them
# zlib's RLE strategy on Pillow's filtered PNG rows: on 256² face crops it encodes in ~60% of the CPU
# time of Pillow's default (level 3) and the files come out ~7% smaller (measured on 20 crops; see
# docs/extract.md). Any PNG reader decodes them as usual.
PNG_STRATEGY = zlib.Z_RLE
MARKER_VERSION = 1

# Reasons a detected face is not written, as the summary shows them.
LOW_SCORE = "detector score below --min-score"
TOO_SMALL = "face smaller than --min-size"
TOO_MANY = "more than --max-faces in a frame"
BAD_LANDMARKS = "landmarks fit the template badly (--max-fit-error)"
OTHER_PERSON = "of other people (farther than --identity-threshold from every --identity reference)"
# Reasons a file is skipped (or only partly read).
UNREADABLE_IMAGE = "unreadable image"
UNREADABLE_VIDEO = "unreadable video"
TRUNCATED_VIDEO = "truncated video (frames that decode were used)"


class OutputError(FaceswapLiteError):
    """The output folder cannot be used (not writable, a file, or holds faces of another geometry)."""


class NoFacesFoundError(FaceswapLiteError):
    """Extraction finished without a single face in the face set."""

    exit_code = 1


@dataclass(frozen=True)
class ExtractOptions:
    """Everything that controls an extraction (the CLI's options, one to one)."""

    detector: str = DEFAULT_DETECTOR
    detector_settings: Mapping[str, Any] = field(default_factory=dict)
    size: int = DEFAULT_SIZE
    padding: float = DEFAULT_PADDING
    centering: float = DEFAULT_CENTERING
    fill: tuple[int, ...] = (0, 0, 0)
    every: int = 1
    min_size: float = 0.0
    max_faces: int = 0  # 0: no limit
    min_score: float | None = None
    max_fit_error: float = DEFAULT_MAX_FIT_ERROR
    workers: int | None = None  # None: one per CPU
    overwrite: bool = False
    plugins_dirs: tuple[str, ...] = ()
    compress_level: int = 1  # zlib level of the PNGs (with the RLE strategy, see PNG_STRATEGY)
    identity: tuple[str, ...] = ()  # photos or face sets of the person to keep (empty: keep everyone)
    identity_threshold: float = DEFAULT_IDENTITY_THRESHOLD

    def geometry(self) -> dict[str, float]:
        """The settings that fix where a face lands in its crop (a face set must not mix them)."""
        return {"size": self.size, "padding": self.padding, "centering": self.centering}

    def worker_count(self) -> int:
        """``workers``, or the CPUs this process may run on."""
        return self.workers if self.workers is not None else usable_cpus()


@dataclass
class ExtractPlan:
    """What :func:`run_extract` will do: checked options, the sources to read and those already done."""

    options: ExtractOptions
    output: Path
    detector: DetectorSpec
    todo: list[Source]
    done: list[Source]
    done_faces: int  # faces the done sources left in the output
    total_frames: int  # frames to process (from the video headers: an estimate for the progress bar)
    references: np.ndarray | None = None  # M×128 descriptors of --identity (None: keep every face)


@dataclass
class ExtractSummary:
    """What an extraction did: counts, and why anything was skipped."""

    output: Path
    workers: int
    sources: int = 0
    photos: int = 0
    videos: int = 0
    sources_done_before: int = 0
    faces_done_before: int = 0
    frames: int = 0
    faces_found: int = 0
    faces_written: int = 0
    skipped_faces: Counter[str] = field(default_factory=Counter)
    skipped_files: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def no_faces(self) -> bool:
        """True when the face set holds no face after this run."""
        return self.faces_written == 0 and self.faces_done_before == 0

    def lines(self) -> list[str]:
        """The summary as text lines (the CLI prints them)."""
        rate = (lambda n: f"{n / self.seconds:.2f}") if self.seconds > 0 else (lambda n: "-")
        out = [f"Sources: {self.sources} ({_n(self.photos, 'photo')}, {_n(self.videos, 'video')})"]
        if self.sources_done_before:
            out[0] += (f"; {self.sources_done_before} already done with {_n(self.faces_done_before, 'face')}, "
                       "skipped (--overwrite redoes them)")
        out.append(f"Frames:  {self.frames} processed")
        out.append(f"Faces:   {self.faces_written} written to {self.output} ({self.faces_found} detected)")
        for reason, n in sorted(self.skipped_faces.items()):
            out.append(f"Skipped: {_n(n, 'face')}: {reason}")
        for reason, n in sorted(self.skipped_files.items()):
            out.append(f"Skipped: {_n(n, 'file')}: {reason}")
        out.append(f"Time:    {self.seconds:.1f} s ({rate(self.frames)} frames/s, "
                   f"{rate(self.faces_written)} faces/s) with {_n(self.workers, 'worker')}")
        return out


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# ----------------------------------------------------------------------------------------------
# Planning: every check that can fail happens here, before anything is written.


def _check_options(o: ExtractOptions) -> None:
    problems = []
    if o.size < 16 or o.size > 4096:
        problems.append(f"--size must be 16..4096 pixels, got {o.size}")
    if not -0.45 < o.padding <= 3.0:
        problems.append(f"--padding must be in (-0.45, 3], got {o.padding}")
    if abs(o.centering) > 1.0:
        problems.append(f"--centering must be in [-1, 1], got {o.centering}")
    if o.every < 1:
        problems.append(f"--every must be at least 1, got {o.every}")
    if o.min_size < 0:
        problems.append(f"--min-size must be >= 0, got {o.min_size}")
    if o.max_faces < 0:
        problems.append(f"--max-faces must be >= 0 (0: no limit), got {o.max_faces}")
    if o.max_fit_error <= 0:
        problems.append(f"--max-fit-error must be > 0, got {o.max_fit_error}")
    if o.workers is not None and o.workers < 1:
        problems.append(f"--workers must be >= 1, got {o.workers}")
    if len(o.fill) != 3 or any(not 0 <= c <= 255 for c in o.fill):
        problems.append(f"--fill must be three values 0..255, got {o.fill}")
    if not 0 <= o.compress_level <= 9:
        problems.append(f"PNG compress level must be 0..9, got {o.compress_level}")
    if not o.identity_threshold > 0:
        problems.append(f"--identity-threshold must be > 0, got {o.identity_threshold}")
    if problems:
        raise FaceswapLiteError("; ".join(problems))


def marker_path(output: Path, source: Source) -> Path:
    return output / DONE_DIR / f"{source.key}.json"


def _stat_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == MARKER_VERSION else None


def plan_extract(inputs: Sequence[str | Path], output: str | Path, options: ExtractOptions) -> ExtractPlan:
    """Check the request and list the work; raises a FaceswapLiteError (and writes nothing) if it is wrong."""
    if not inputs:
        raise FaceswapLiteError("give at least one photo, video or folder to extract from")
    output = Path(output)
    _check_options(options)
    template_in_crop(options.size, options.padding, options.centering)  # template loads
    detector = DetectorSpec.check(options.detector, options.detector_settings, options.plugins_dirs)
    sources = find_sources(inputs, exclude=output)
    if not sources:
        raise FaceswapLiteError(f"no photos or videos found in {', '.join(map(str, inputs))}")
    check_output_folder(output, OutputError)
    references = (identity_references(options.identity, detector, options.min_score)
                  if options.identity else None)

    markers = {}
    if (output / DONE_DIR).is_dir():
        markers = {p.stem: m for p in sorted((output / DONE_DIR).glob("*.json")) if (m := _read_marker(p))}
    redone = {s.key for s in sources} if options.overwrite else set()
    for key, marker in markers.items():  # every source already in the set, not only this run's
        if marker.get("geometry") != options.geometry() and key not in redone:
            raise OutputError(
                f"{output} holds faces extracted with {marker.get('geometry')} (from {marker.get('source')}), "
                f"this run asks for {options.geometry()}; a face set must not mix crop geometries: use "
                f"another output folder or the same --size/--padding/--centering"
            )
    todo, done, done_faces = [], [], 0
    for source in sources:
        marker = markers.get(source.key)
        if marker is None or options.overwrite or marker.get("stat") != list(_stat_key(source.path)):
            todo.append(source)  # new, asked to redo, or the file changed since
        else:
            done.append(source)
            done_faces += len(marker.get("faces", []))
    total = sum(1 if s.kind == "image" else math.ceil(video_frame_count(s.path) / options.every) for s in todo)
    return ExtractPlan(options=options, output=output, detector=detector, todo=todo, done=done,
                       done_faces=done_faces, total_frames=total, references=references)


def identity_references(refs: Sequence[str | Path], spec: DetectorSpec | None = None,
                        min_score: float | None = None) -> np.ndarray:
    """The descriptors (M×128) of ``refs`` (see :func:`faceswap_lite.identity.load_references`), the
    faces in reference photos found by detector ``spec`` (default: the default detector)."""
    detector = detector_for(spec or DetectorSpec.check(DEFAULT_DETECTOR))
    return identity.load_references(refs, lambda rgb: find_faces(detector, rgb, min_score))


# ----------------------------------------------------------------------------------------------
# The work on one frame: runs in the workers (or inline with one worker).


@dataclass
class FrameResult:
    """What one photo or video frame gave."""

    frames: int = 1
    found: int = 0
    written: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    error: str | None = None  # a photo that could not be read


def face_name(source: Source, frame: int | None, face_index: int) -> str:
    """``<stem>-<hash>_<frame:06d>_<face:02d>.png`` (frame 0 for a photo)."""
    return f"{source.key}_{frame or 0:06d}_{face_index:02d}.png"


class FrameWorker:
    """Detect, align and write the faces of one frame. One per process (it owns the detector)."""

    def __init__(self, detector: DetectorSpec, options: ExtractOptions, output: Path,
                 references: np.ndarray | None = None) -> None:
        self.detector = detector_for(detector)
        self.o = options
        self.output = output
        self.references = references
        identity.network()  # load the model now, not on the first face

    def process(self, source: Source, frame: int | None, rgb: np.ndarray | None) -> FrameResult:
        o = self.o
        if rgb is None:  # a photo: read it here, in the worker
            try:
                rgb = read_image(source.path)
            except SourceReadError as exc:
                return FrameResult(frames=0, error=str(exc))
        result = FrameResult()
        faces = list(enumerate(self.detector.detect(rgb)))
        result.found = len(faces)
        kept = []
        for index, det in faces:
            x0, y0, x1, y1 = det.box
            if o.min_score is not None and det.score < o.min_score:
                result.skipped[LOW_SCORE] += 1
            elif min(x1 - x0, y1 - y0) < o.min_size:
                result.skipped[TOO_SMALL] += 1
            else:
                kept.append((index, det))
        if o.max_faces and len(kept) > o.max_faces:
            result.skipped[TOO_MANY] += len(kept) - o.max_faces
            largest = sorted(kept, key=lambda f: -(f[1].box[2] - f[1].box[0]) * (f[1].box[3] - f[1].box[1]))
            keep = {index for index, _ in largest[: o.max_faces]}
            kept = [f for f in kept if f[0] in keep]
        h, w = rgb.shape[:2]
        aligned = []
        for index, det in kept:
            landmarks = face_landmarks(self.detector, rgb, det.box)
            face = align_face(rgb, landmarks, o.size, o.padding, o.centering, o.fill)
            if not face.fit_error <= o.max_fit_error:  # also catches NaN
                result.skipped[BAD_LANDMARKS] += 1
            else:
                aligned.append((index, det, landmarks, face))
        # One batch for the frame's faces, on the source, as dlib's model expects.
        found = identity.descriptors(rgb, [landmarks for _, _, landmarks, _ in aligned])
        for (index, det, _, face), descriptor in zip(aligned, found):
            if self.references is not None and not identity.matches(descriptor, self.references,
                                                                     o.identity_threshold):
                result.skipped[OTHER_PERSON] += 1
                continue
            meta = FaceMeta(
                source=source.name, frame=frame, face_index=index, box=[float(v) for v in det.box],
                score=float(det.score), landmarks=face.landmarks, matrix=face.matrix, size=o.size,
                padding=o.padding, centering=o.centering, source_size=[w, h],
                valid_polygon=face.valid_polygon, descriptor=descriptor,
            )
            name = face_name(source, frame, index)
            write_face(self.output / name, face.crop, meta, compress_level=o.compress_level,
                       compress_type=PNG_STRATEGY)
            result.written.append(name)
        return result


_WORKER: FrameWorker | None = None


def _init_worker(detector: DetectorSpec, options: ExtractOptions, output: Path,
                 references: np.ndarray | None) -> None:
    """Pool initializer: Ctrl-C is the main process's business; build this process's detector."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)  # one process per core already
    identity.set_threads(1)
    _WORKER = FrameWorker(detector, options, output, references)


def _work(source: Source, frame: int | None, rgb: np.ndarray | None) -> FrameResult:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.process(source, frame, rgb)


# ----------------------------------------------------------------------------------------------
# The main loop: feed frames in order, keep a bounded window in flight, consume results in order.


@dataclass
class _SourceEnd:
    source: Source
    error: str | None = None  # unreadable video
    truncated: str | None = None  # decoded fewer frames than declared


def _events(plan: ExtractPlan) -> Iterator[tuple[Source, int | None, np.ndarray | None] | _SourceEnd]:
    """Work items in order: (source, frame, rgb) for each photo / video frame, then its _SourceEnd."""
    for source in plan.todo:
        _clear_source(plan.output, source)
        if source.kind == "image":
            yield source, None, None
            yield _SourceEnd(source)
            continue
        reader = VideoReader(source.path, plan.options.every)
        try:
            for index, rgb in reader:
                yield source, index, rgb
        except SourceReadError as exc:
            yield _SourceEnd(source, error=str(exc))
            continue
        truncated = (f"decoded {reader.decoded} of the {reader.declared} frames its header declares"
                     if reader.truncated else None)
        yield _SourceEnd(source, truncated=truncated)


_FACE_NAME = re.compile(r"^(?P<key>.+)_\d{6,}_\d{2,}\.png$")


def _clear_source(output: Path, source: Source) -> None:
    """Remove a source's faces and marker before (re)doing it: a source without a marker is
    incomplete (interrupted) or being overwritten, and must not keep stale faces."""
    marker_path(output, source).unlink(missing_ok=True)
    for path in output.glob(f"{source.key}_*.png"):  # keys hold no glob characters (see source_key)
        m = _FACE_NAME.match(path.name)
        if m and m.group("key") == source.key:
            path.unlink(missing_ok=True)


def _write_marker(output: Path, source: Source, options: ExtractOptions, faces: list[str], frames: int) -> None:
    data = {
        "version": MARKER_VERSION, "source": source.name, "stat": list(_stat_key(source.path)),
        "geometry": options.geometry(), "frames": frames, "faces": faces,
        "settings": {k: v for k, v in asdict(options).items() if k not in ("workers", "overwrite")},
    }
    text = json.dumps(data, indent=1, default=str).encode("utf-8")
    write_atomic(output / DONE_DIR / f"{source.key}.json", lambda fh: fh.write(text))


class Extractor:
    """Runs plans on worker processes started once and reused by every :meth:`run` (with the same
    detector, options and output). One worker runs inline, in this process.

    >>> with Extractor(plan) as ex:        # doctest: +SKIP
    ...     summary = ex.run(plan)
    """

    def __init__(self, plan: ExtractPlan) -> None:
        self.workers = plan.options.worker_count()
        self._setup = (plan.detector, plan.options, plan.output)
        self._references = plan.references
        self._pool: ProcessPoolExecutor | None = None
        self._inline: FrameWorker | None = None
        self._threads_before = 0

    def __enter__(self) -> Extractor:
        if self.workers == 1:
            # --workers N uses N cores: the descriptor network runs on this one, as the detector does.
            self._threads_before = identity.set_threads(1)
            self._inline = FrameWorker(*self._setup, self._references)
        else:
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(*self._setup, self._references))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        if self._threads_before:
            identity.set_threads(self._threads_before)
            self._threads_before = 0
        if self._pool is not None:  # on Ctrl-C: drop what is queued, let the frames in flight finish
            self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)
            self._pool = None

    def _submit(self, source: Source, frame: int | None, rgb: np.ndarray | None) -> Future[FrameResult] | Done:
        if self._inline is not None:
            return Done(self._inline.process(source, frame, rgb))
        assert self._pool is not None, "use Extractor as a context manager"
        return self._pool.submit(_work, source, frame, rgb)

    def run(self, plan: ExtractPlan, progress: Callable[[int, int], None] | None = None) -> ExtractSummary:
        """Extract the faces of ``plan``; ``progress(frames, faces)`` is called with increments as
        frames finish, in order. Returns the summary; raises only for what stops the whole run."""
        if (plan.detector, plan.options, plan.output) != self._setup or plan.references is not self._references:
            raise ValueError("Extractor.run: the plan's detector, options, output and references must be "
                             "the Extractor's")
        o = plan.options
        start = time.perf_counter()
        every = plan.todo + plan.done
        summary = ExtractSummary(output=plan.output, workers=self.workers, sources=len(every),
                                 photos=sum(s.kind == "image" for s in every),
                                 videos=sum(s.kind == "video" for s in every),
                                 sources_done_before=len(plan.done), faces_done_before=plan.done_faces)
        plan.output.mkdir(parents=True, exist_ok=True)
        (plan.output / DONE_DIR).mkdir(exist_ok=True)
        source_faces: dict[str, list[str]] = {}
        source_frames: Counter[str] = Counter()

        def consume(source: Source, result: FrameResult | _SourceEnd) -> None:
            if isinstance(result, _SourceEnd):
                if result.error is not None:
                    summary.skipped_files[UNREADABLE_VIDEO] += 1
                    _warn(summary, f"{source.name}: {result.error}; skipped")
                    return
                if result.truncated is not None:
                    summary.skipped_files[TRUNCATED_VIDEO] += 1
                    _warn(summary, f"{source.name}: truncated or damaged video: {result.truncated}")
                if source.kind == "image" and source_frames[source.key] == 0:
                    return  # unreadable photo: counted already; no marker, so a re-run tries again
                _write_marker(plan.output, source, o, source_faces.get(source.key, []), source_frames[source.key])
                return
            if result.error is not None:
                summary.skipped_files[UNREADABLE_IMAGE] += 1
                _warn(summary, f"{source.name}: {result.error}; skipped")
            summary.frames += result.frames
            summary.faces_found += result.found
            summary.faces_written += len(result.written)
            summary.skipped_faces.update(result.skipped)
            source_faces.setdefault(source.key, []).extend(result.written)
            source_frames[source.key] += result.frames
            if progress is not None:
                progress(1, len(result.written))

        # Results are consumed in submission order; the window bounds the decoded frames in memory.
        window: deque[tuple[Source, Future[FrameResult] | Done]] = deque()
        max_in_flight = 2 * self.workers + 2
        for event in _events(plan):
            if isinstance(event, _SourceEnd):
                window.append((event.source, Done(event)))
            else:
                window.append((event[0], self._submit(*event)))
            while len(window) > max_in_flight or (window and isinstance(window[0][1], Done)):
                source, pending = window.popleft()
                consume(source, pending.result())
        while window:
            source, pending = window.popleft()
            consume(source, pending.result())
        summary.seconds = time.perf_counter() - start
        return summary


def run_extract(plan: ExtractPlan, progress: Callable[[int, int], None] | None = None) -> ExtractSummary:
    """Extract the faces of ``plan`` (see :meth:`Extractor.run`), starting and stopping the workers."""
    with Extractor(plan) as extractor:
        return extractor.run(plan, progress)


def _warn(summary: ExtractSummary, message: str) -> None:
    summary.warnings.append(message)
    log.warning("%s", message)
