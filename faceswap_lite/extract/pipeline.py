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

Parallelism: photos are read by the workers (:mod:`.worker`: detect, align, write); videos are
decoded in order by the main process and their frames handed to the workers (frame indices are
exact, no seeking). The workers, the in-order window and Ctrl-C are :mod:`faceswap_lite.frames`'s:
face names depend only on the source and frame, so the output is the same for any number of
workers; on Ctrl-C the frames in flight finish (each face is written whole) and
:class:`~faceswap_lite.frames.Interrupted` is raised. A source's done-marker is written only once all
its faces are, so a re-run redoes the interrupted source.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import identity
from ..errors import FaceswapLiteError
from ..frames import UNREADABLE_IMAGE, UNREADABLE_VIDEO, Done, FramesSummary, Window, Workers, plural, running
from ..fsutil import check_output_folder, full_disk_is_an_error
from .align import template_in_crop
from .detect import DEFAULT_DETECTOR, DetectorSpec, detector_for, find_faces
from .markers import DONE_DIR, clear_source, read_markers, stat_key, write_marker
from .options import ExtractOptions
from .sources import (
    Source,
    SourceReadError,
    VideoReader,
    check_outside_inputs,
    find_sources,
    video_frame_count,
)
from .worker import FrameResult, FrameWorker


class OutputError(FaceswapLiteError):
    """The output folder cannot be used (not writable, a file, or holds faces of another geometry)."""


class NoFacesFoundError(FaceswapLiteError):
    """Extraction finished without a single face in the face set."""

    exit_code = 1


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
class ExtractSummary(FramesSummary):
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

    @property
    def no_faces(self) -> bool:
        """True when the face set holds no face after this run."""
        return self.faces_written == 0 and self.faces_done_before == 0

    def no_faces_reason(self) -> str:
        """Why the face set is empty, for the one-line error: no source could be read, or no face
        was found in the frames that were."""
        unreadable = [name for reason in (UNREADABLE_IMAGE, UNREADABLE_VIDEO) for name in self.skipped.get(reason, [])]
        if unreadable and self.frames == 0:
            names = ", ".join(unreadable[:3]) + (f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else "")
            return (f"none of the {plural(len(unreadable), 'source')} could be read ({names}: corrupt, or a format "
                    "OpenCV cannot decode); give photos or videos that open in an image viewer or player")
        also = f" ({len(unreadable)} more could not be read)" if unreadable else ""
        return (f"no face found in the {self.frames} frame(s) of {plural(self.sources - len(unreadable), 'source')}"
                f"{also}; try a larger detector upsample (-s upsample=2), --detector dlib-cnn, or lower "
                "--min-size/--min-score")

    def lines(self) -> list[str]:
        """The summary as text lines (the CLI prints them)."""
        rate = (lambda n: f"{n / self.seconds:.2f}") if self.seconds > 0 else (lambda n: "-")
        out = [f"Sources: {self.sources} ({plural(self.photos, 'photo')}, {plural(self.videos, 'video')})"]
        if self.sources_done_before:
            out[0] += (f"; {self.sources_done_before} already done with {plural(self.faces_done_before, 'face')}, "
                       "skipped (--overwrite redoes them)")
        out.append(f"Frames:  {self.frames} processed")
        out.append(f"Faces:   {self.faces_written} written to {self.output} ({self.faces_found} detected)")
        out += [f"Skipped: {plural(n, 'face')}: {reason}" for reason, n in sorted(self.skipped_faces.items())]
        out += self.skipped_lines()
        out.append(f"Time:    {self.seconds:.1f} s ({rate(self.frames)} frames/s, "
                   f"{rate(self.faces_written)} faces/s) with {plural(self.workers, 'worker')}")
        return out


# ----------------------------------------------------------------------------------------------
# Planning: every check that can fail happens here, before anything is written.


def plan_extract(inputs: Sequence[str | Path], output: str | Path, options: ExtractOptions) -> ExtractPlan:
    """Check the request and list the work; raises a FaceswapLiteError (and writes nothing) if it is wrong."""
    if not inputs:
        raise FaceswapLiteError("give at least one photo, video or folder to extract from")
    output = Path(output)
    options.check()
    template_in_crop(options.size, options.padding, options.centering)  # template loads
    detector = DetectorSpec.check(options.detector, options.detector_settings, options.plugins_dirs)
    check_outside_inputs(inputs, output, OutputError)
    sources = find_sources(inputs, exclude=output)
    if not sources:
        raise FaceswapLiteError(f"no photos or videos found in {', '.join(map(str, inputs))}")
    check_output_folder(output, OutputError)
    references = (identity_references(options.identity, detector, options.min_score)
                  if options.identity else None)

    markers = read_markers(output)
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
        if marker is None or options.overwrite or marker.get("stat") != list(stat_key(source.path)):
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
# The main loop: feed frames in order, keep a bounded window in flight, consume results in order.


@dataclass
class _SourceEnd:
    source: Source
    error: str | None = None  # unreadable video
    truncated: tuple[int, int] | None = None  # (decoded, declared): fewer frames than the header declares


def _events(plan: ExtractPlan) -> Iterator[tuple[Source, int | None, np.ndarray | None] | _SourceEnd]:
    """Work items in order: (source, frame, rgb) for each photo / video frame, then its _SourceEnd."""
    for source in plan.todo:
        clear_source(plan.output, source)
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
        yield _SourceEnd(source, truncated=(reader.decoded, reader.declared) if reader.truncated else None)


class Extractor:
    """Runs plans on worker processes started once and reused by every :meth:`run` (with the same
    detector, options and output). One worker runs inline, in this process.

    >>> with Extractor(plan) as ex:        # doctest: +SKIP
    ...     summary = ex.run(plan)
    """

    def __init__(self, plan: ExtractPlan) -> None:
        self._setup = (plan.detector, plan.options, plan.output)
        self._references = plan.references
        self._workers = Workers(plan.options.worker_count(), FrameWorker, (*self._setup, self._references),
                                FrameWorker.process)
        self.workers = self._workers.count

    def __enter__(self) -> Extractor:
        self._workers.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._workers.__exit__(*exc)

    def run(self, plan: ExtractPlan, progress: Callable[[int, int], None] | None = None) -> ExtractSummary:
        """Extract the faces of ``plan``; ``progress(frames, faces)`` is called with increments as
        frames finish, in order. Returns the summary; raises only for what stops the whole run
        (Ctrl-C: :class:`~faceswap_lite.frames.Interrupted`, with the summary of what was done)."""
        if (plan.detector, plan.options, plan.output) != self._setup or plan.references is not self._references:
            raise ValueError("Extractor.run: the plan's detector, options, output and references must be "
                             "the Extractor's")
        every = plan.todo + plan.done
        summary = ExtractSummary(output=plan.output, workers=self.workers, sources=len(every),
                                 photos=sum(s.kind == "image" for s in every),
                                 videos=sum(s.kind == "video" for s in every),
                                 sources_done_before=len(plan.done), faces_done_before=plan.done_faces)
        results = _Results(plan, summary, progress)
        # The window bounds the decoded frames in memory; a finished item is consumed at once (a
        # source's marker is written as soon as its last frame is).
        window = Window(results.consume, limit=2 * self.workers + 2, eager=True)
        with full_disk_is_an_error(plan.output), running(summary):
            (plan.output / DONE_DIR).mkdir(parents=True, exist_ok=True)
            for event in _events(plan):
                if isinstance(event, _SourceEnd):
                    window.push(event.source, Done(event))
                else:
                    window.push(event[0], self._workers.submit(*event))
            window.drain()
        return summary


class _Results:
    """Counts each frame's result into the summary, in order, and writes a source's done-marker
    once all its frames are counted."""

    def __init__(self, plan: ExtractPlan, summary: ExtractSummary, progress: Callable[[int, int], None] | None):
        self.plan, self.summary, self.progress = plan, summary, progress
        self.faces: dict[str, list[str]] = {}
        self.frames: Counter[str] = Counter()

    def consume(self, items: list[tuple[Source, FrameResult | _SourceEnd]]) -> None:
        for source, result in items:
            if isinstance(result, _SourceEnd):
                self._end(source, result)
            else:
                self._frame(source, result)

    def _frame(self, source: Source, result: FrameResult) -> None:
        s = self.summary
        if result.error is not None:
            s.unreadable(source.kind, source.name, result.error)
        s.frames += result.frames
        s.faces_found += result.found
        s.faces_written += len(result.written)
        s.skipped_faces.update(result.skipped)
        self.faces.setdefault(source.key, []).extend(result.written)
        self.frames[source.key] += result.frames
        if self.progress is not None:
            self.progress(1, len(result.written))

    def _end(self, source: Source, end: _SourceEnd) -> None:
        if end.error is not None:
            self.summary.unreadable(source.kind, source.name, end.error)
            return
        if end.truncated is not None:
            self.summary.truncated(source.name, *end.truncated)
        if source.kind == "image" and self.frames[source.key] == 0:
            return  # unreadable photo: counted already; no marker, so a re-run tries again
        write_marker(self.plan.output, source, self.plan.options, self.faces.get(source.key, []),
                      self.frames[source.key])


def run_extract(plan: ExtractPlan, progress: Callable[[int, int], None] | None = None) -> ExtractSummary:
    """Extract the faces of ``plan`` (see :meth:`Extractor.run`), starting and stopping the workers."""
    with Extractor(plan) as extractor:
        return extractor.run(plan, progress)
