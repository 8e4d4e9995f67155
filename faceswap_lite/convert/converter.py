"""Convert's main loop (:class:`Converter`): the frames of each input through detection, the
model and blending, in order, into its output.

Overlap: a thread decodes ahead (:func:`.video.prefetch`), the detector workers
(:class:`faceswap_lite.frames.Workers`) run on the frames in a window ahead of the main thread,
which smooths, aligns, runs the model in batches and blends (:mod:`.swap`); a thread encodes
behind. Each output is written under a temporary name and renamed when whole (:mod:`.sinks`).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..extract.sources import Source, SourceReadError, read_image
from ..frames import Done, FramesSummary, Window, Workers, running
from ..fsutil import full_disk_is_an_error
from .mark import draw_watermark, write_photo
from .sinks import FramesSink, VideoFileSink
from .smooth import FaceTracks
from .swap import FaceSwapper
from .video import VideoReadError, VideoSource, prefetch
from .workers import FaceFinder

if TYPE_CHECKING:  # the pipeline imports this module
    from .pipeline import ConvertPlan, Job

STAGES = ("decode", "detect", "model", "blend", "encode")


@dataclass
class ConvertSummary(FramesSummary):
    """What a conversion did (``times``: seconds per stage of :data:`STAGES`; detect: worker time)."""

    output: Path
    inputs: int = 0
    frames: int = 0
    faces_swapped: int = 0
    frames_without_face: int = 0
    written: list[Path] = field(default_factory=list)
    faceless: list[str] = field(default_factory=list)  # videos without a face: written unchanged

    def nothing_converted(self) -> str | None:
        """Why nothing was written, when inputs were skipped and none converted (else None)."""
        if self.written or not self.skipped:
            return None
        names = [name for files in self.skipped.values() for name in files]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return (f"nothing was converted: {'the input' if len(names) == 1 else f'all {len(names)} inputs'} "
                f"could not be read ({shown}); give photos or videos that open in a viewer or player")

    def lines(self) -> list[str]:
        fps = f"{self.frames / self.seconds:.2f}" if self.seconds > 0 else "-"
        out = [f"Inputs:  {self.inputs}, {len(self.written)} written to {self.output}",
               f"Frames:  {self.frames} ({self.frames_without_face} without a face, passed through)",
               f"Faces:   {self.faces_swapped} swapped"]
        out += self.skipped_lines(names=True)
        if self.faceless:
            out.append(f"No face: {', '.join(self.faceless)} (written unchanged)")
        split = ", ".join(f"{k} {self.times[k]:.1f}" for k in STAGES)
        out.append(f"Time:    {self.seconds:.1f} s ({fps} frames/s); stage seconds: {split}")
        return out


@dataclass
class _Frame:
    index: int
    rgb: np.ndarray
    deliver: Callable[[np.ndarray], None]
    tracks: FaceTracks | None


class Converter:
    """Runs a plan: the detector workers, the window of frames in flight, model batches, blending.

    The detector processes start once, on entering, and serve every :meth:`run` (benchmarks run
    a plan several times); one worker runs inline, in this process.

    >>> with Converter(plan) as converter:     # doctest: +SKIP
    ...     summary = converter.run()
    """

    def __init__(self, plan: ConvertPlan) -> None:
        self.plan = plan
        self.o = plan.options
        self.swapper = FaceSwapper(plan.model, plan.options)
        self.progress: Callable[[int, int], None] | None = None
        self.summary = ConvertSummary(output=plan.output, inputs=len(plan.jobs))
        # With --faces nothing is detected; the model runs here, so an inline detector keeps this
        # process's threads, and a pooled one imports torch only for --identity.
        self._detect = None if plan.detector is None else Workers(
            self.o.worker_count(), FaceFinder, (plan.detector, plan.references, self.o.identity_threshold),
            FaceFinder.find, torch=plan.references is not None, inline_one_thread=False)
        workers = 1 if self._detect is None else self._detect.count
        self._chunk = max(self.o.batch_size, 2 * workers)

    def __enter__(self) -> Converter:
        if self._detect is not None:
            self._detect.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._detect is not None:
            self._detect.__exit__(*exc)

    def run(self, progress: Callable[[int, int], None] | None = None) -> ConvertSummary:
        """Convert the plan's inputs; returns this run's summary. Ctrl-C raises
        :class:`~faceswap_lite.frames.Interrupted` with it (see :func:`run_convert`)."""
        self.progress = progress
        self.summary = ConvertSummary(output=self.plan.output, inputs=len(self.plan.jobs))
        with full_disk_is_an_error(self.plan.output), running(self.summary):
            self.plan.output.mkdir(parents=True, exist_ok=True)
            self._photos([j for j in self.plan.jobs if j.source.kind == "image"])
            for job in self.plan.jobs:
                if job.source.kind == "video":
                    self._video(job)
        return self.summary

    def _window(self) -> Window:
        """Frames in flight, handed on a model batch at a time once two batches are held."""
        return Window(self._process, limit=2 * self._chunk - 1, batch=self._chunk)

    def _find(self, index: int, rgb: np.ndarray, key: str | None) -> Future | Done:
        """The faces of a frame: -> (landmarks list, seconds), detected or from the --faces set."""
        if self._detect is None:
            return Done((self.plan.faceset.landmarks(key, index), 0.0))
        return self._detect.submit(rgb)

    def _process(self, items: list[tuple[_Frame, tuple[list[np.ndarray], float]]]) -> None:
        """Align the faces of a batch of frames, swap them in model batches, blend, deliver in order."""
        s = self.summary
        s.times["detect"] += sum(seconds for _, (_, seconds) in items)
        aligned = s.timed("detect", self._align, items)  # alignment: extract counts it with detection
        swapped = s.timed("model", self.swapper.swap, [face for _, face in aligned])
        counts = s.timed("blend", self._blend, [fr for fr, _ in items], aligned, swapped)
        for pos, (fr, _) in enumerate(items):
            fr.deliver(fr.rgb)
            if self.progress is not None:
                self.progress(1, counts[pos])

    def _align(self, items: list[tuple[_Frame, tuple[list[np.ndarray], float]]]) -> list[tuple[int, Any]]:
        """(frame position, aligned face) of every face of the batch."""
        return [(pos, face) for pos, (fr, (landmarks, _)) in enumerate(items)
                for face in self.swapper.align(fr.index, fr.rgb, landmarks, fr.tracks)]

    def _blend(self, frames: list[_Frame], aligned: list[tuple[int, Any]], swapped: list[Any]) -> Counter[int]:
        """Blend the swapped faces into their frames, mark them; the faces swapped per frame position."""
        counts: Counter[int] = Counter()
        for (pos, face), (image, mask) in zip(aligned, swapped):
            if self.swapper.blend(frames[pos].rgb, face, image, mask):
                counts[pos] += 1
        for pos, fr in enumerate(frames):
            if self.o.watermark:
                draw_watermark(fr.rgb, self.o.watermark)
            self.summary.frames += 1
            self.summary.faces_swapped += counts[pos]
            self.summary.frames_without_face += counts[pos] == 0
        return counts

    # -- sources
    def _key(self, source: Source) -> str | None:
        return self.plan.faceset.key_of(source) if self.plan.faceset else None

    def _photos(self, jobs: list[Job]) -> None:
        window = self._window()
        for job in jobs:
            try:
                rgb = self.summary.timed("decode", read_image, job.source.path)
            except SourceReadError as exc:
                self.summary.unreadable("image", job.source.name, str(exc))
                continue

            def deliver(out: np.ndarray, job: Job = job) -> None:
                job.out.parent.mkdir(parents=True, exist_ok=True)
                self.summary.written.append(self.summary.timed("encode", write_photo, job.out, out))

            window.push(_Frame(0, rgb, deliver, None), self._find(0, rgb, self._key(job.source)))
        window.drain()

    def _video(self, job: Job) -> None:
        try:
            reader = VideoSource(job.source.path)
        except VideoReadError as exc:
            self.summary.unreadable("video", job.source.name, str(exc))
            return
        sink = FramesSink(job.out) if self.o.frames else VideoFileSink(job.out, reader.info, job.source.path)
        before = (self.summary.frames, self.summary.faces_swapped)
        try:
            self._encode(reader, sink, job)
        except VideoReadError as exc:
            sink.discard()
            self.summary.unreadable("video", job.source.name, str(exc))
            return
        except BaseException:  # Ctrl-C: the file in progress goes
            sink.discard()
            raise
        self.summary.written.append(self.summary.timed("encode", sink.finish))
        if reader.truncated:
            self.summary.truncated(job.source.name, reader.decoded, reader.info.frames, reader.error)
        if self.summary.faces_swapped == before[1]:
            self.summary.faceless.append(job.source.name)
            self.summary.warn(f"{job.source.name}: no face found in {self.summary.frames - before[0]} frames; "
                              "written unchanged")

    def _encode(self, reader: VideoSource, sink: FramesSink | VideoFileSink, job: Job) -> None:
        """Decode ahead, convert in the window and encode behind, in order, every frame of a video."""
        key = self._key(job.source)
        tracks = FaceTracks(float(reader.info.fps)) if self.o.smooth else None
        window = self._window()
        with ThreadPoolExecutor(1) as encoder:  # one thread: frames are encoded in order
            pending: deque[Future] = deque()

            def deliver(out: np.ndarray) -> None:
                pending.append(encoder.submit(self.summary.timed, "encode", sink.write, out))
                while len(pending) > self._chunk:
                    pending.popleft().result()

            for index, rgb in prefetch(reader, self._chunk, self.summary.timed):
                window.push(_Frame(index, rgb, deliver, tracks), self._find(index, rgb, key))
            window.drain()
            while pending:
                pending.popleft().result()


