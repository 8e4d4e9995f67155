"""The convert pipeline: photos and videos -> detect -> align -> model -> blend -> marked output.

Two steps, like extract, so nothing is written when the request is wrong:

>>> plan = plan_convert(["clip.mp4"], "out/", "runs/a", ConvertOptions())   # doctest: +SKIP
>>> summary = run_convert(plan, progress=lambda frames, faces: None)        # doctest: +SKIP

Inputs are found by extract's :func:`~faceswap_lite.extract.sources.find_sources`; faces are
detected and aligned with extract's detector plugins (:func:`~faceswap_lite.extract.detect.detector_for`,
in worker processes) and :func:`~faceswap_lite.extract.align.align_face`, in the crop geometry the
model trained on; or, with ``--faces``, taken from a face set of the same inputs (its landmarks).

Overlap: a thread decodes ahead, the detector workers run on the frames in a window ahead of the
main thread, which smooths, aligns, runs the model in batches and blends; a thread encodes behind.
Output names follow the inputs (``OUT/clip.mp4``, ``OUT/photo.jpg``, folders keep their layout);
each is written under a hidden temporary name and renamed when complete, so Ctrl-C leaves none
half-written under its final name.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import shutil
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..data.masks import valid_area
from ..errors import FaceswapLiteError
from ..extract.align import DEFAULT_MAX_FIT_ERROR, align_face, alignment_matrix, fit_error, transform_points
from ..extract.detect import DEFAULT_DETECTOR, DetectorSpec
from ..extract.pipeline import identity_references
from ..extract.sources import Source, SourceReadError, find_sources, read_image
from ..faceset import FaceSetError, list_faces, read_meta
from ..fsutil import check_output_folder
from ..identity import DEFAULT_THRESHOLD as DEFAULT_IDENTITY_THRESHOLD
from ..parallel import Done, usable_cpus
from . import blend
from .mark import PROVENANCE, draw_watermark, output_suffix, write_photo
from .model import Geometry, LoadedModel, load_model, swap_batch
from .smooth import FaceTracks
from .video import VideoInfo, VideoReadError, VideoSink, VideoSource, probe
from .workers import detect_faces, init_worker

log = logging.getLogger(__name__)

UNREADABLE_IMAGE = "unreadable image"
UNREADABLE_VIDEO = "unreadable video"
TRUNCATED_VIDEO = "truncated video (the frames that decode were converted)"
STAGES = ("decode", "detect", "model", "blend", "encode")


class ConvertError(FaceswapLiteError):
    """A convert request that cannot run (options, output folder, inputs)."""


@dataclass(frozen=True)
class ConvertOptions:
    """Everything that controls a conversion (the CLI's options, one to one)."""

    to: str | None = None  # decoder side; None: A -> B, or the only side
    faces: str | None = None  # a face set of these inputs: swap only its faces
    identity: tuple[str, ...] = ()  # reference photos / faces: swap only that person
    identity_threshold: float = DEFAULT_IDENTITY_THRESHOLD
    color: str = "avg"
    blend: str = "alpha"
    erode: float = 0.03  # fraction of the crop side
    blur: float = 0.03  # Gaussian σ = blur × crop side / 2
    smooth: bool = True  # videos only; photos are never smoothed
    frames: bool = False  # PNG frames instead of a video
    watermark: str | None = None
    batch_size: int = 16
    device: str | None = None  # None: the device the run trained on
    detector: str = DEFAULT_DETECTOR
    detector_settings: Mapping[str, Any] = field(default_factory=dict)
    max_fit_error: float = DEFAULT_MAX_FIT_ERROR
    workers: int | None = None  # detector processes; None: one per CPU
    plugins_dirs: tuple[str, ...] = ()

    def worker_count(self) -> int:
        """``workers``, or the CPUs this process may run on."""
        return self.workers if self.workers is not None else usable_cpus()


@dataclass
class Job:
    """One input and where its output goes."""

    source: Source
    out: Path  # the final name (a folder of frames with --frames)


@dataclass
class ConvertPlan:
    options: ConvertOptions
    output: Path
    model: LoadedModel
    jobs: list[Job]
    detector: DetectorSpec | None  # None with --faces
    faceset: FaceIndex | None
    references: np.ndarray | None  # --identity descriptors
    total_frames: int


@dataclass
class ConvertSummary:
    """What a conversion did."""

    output: Path
    inputs: int = 0
    frames: int = 0
    faces_swapped: int = 0
    frames_without_face: int = 0
    written: list[Path] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> the files skipped
    faceless: list[str] = field(default_factory=list)  # videos without a face: written unchanged
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    times: Counter[str] = field(default_factory=Counter)  # seconds per stage (detect: worker time)
    interrupted: bool = False

    def lines(self) -> list[str]:
        fps = f"{self.frames / self.seconds:.2f}" if self.seconds > 0 else "-"
        out = [f"Inputs:  {self.inputs}, {len(self.written)} written to {self.output}",
               f"Frames:  {self.frames} ({self.frames_without_face} without a face, passed through)",
               f"Faces:   {self.faces_swapped} swapped"]
        for reason, names in sorted(self.skipped.items()):
            n = len(names)
            listed = ", ".join(names[:5]) + (f" and {n - 5} more" if n > 5 else "")
            out.append(f"Skipped: {n} file{'s' if n != 1 else ''}: {reason}: {listed}")
        if self.faceless:
            out.append(f"No face: {', '.join(self.faceless)} (written unchanged)")
        split = ", ".join(f"{k} {self.times[k]:.1f}" for k in STAGES)
        out.append(f"Time:    {self.seconds:.1f} s ({fps} frames/s); stage seconds: {split}")
        return out


# ----------------------------------------------------------------------------------------------
# Faces from a face set (--faces): the landmarks extract found, keyed by source, frame, face.


@dataclass
class FaceIndex:
    """Source landmarks of every face in a face set: ``faces[(source path, frame)] = [(face, 68×2)]``."""

    faces: dict[tuple[str, int], list[tuple[int, np.ndarray]]]
    by_name: dict[str, set[str]]  # file name -> source paths, to match inputs given another way

    @classmethod
    def read(cls, folder: str | Path) -> FaceIndex:
        faces: dict[tuple[str, int], list[tuple[int, np.ndarray]]] = {}
        by_name: dict[str, set[str]] = {}
        for path in list_faces(folder):
            try:
                meta = read_meta(path)
            except FaceSetError as exc:
                log.warning("--faces: %s; skipped", exc.message)
                continue
            src = str(Path(meta.source).resolve())
            to_source = cv2.invertAffineTransform(np.asarray(meta.matrix, dtype=np.float64))
            lm = transform_points(to_source, meta.landmarks)
            faces.setdefault((src, int(meta.frame or 0)), []).append((meta.face_index, lm))
            by_name.setdefault(Path(meta.source).name, set()).add(src)
        if not faces:
            raise ConvertError(f"--faces {str(folder)!r}: no readable face files; extract them with "
                               "'faceswap-lite extract' from these inputs")
        for items in faces.values():
            items.sort(key=lambda f: f[0])
        return cls(faces, by_name)

    def key_of(self, source: Source) -> str | None:
        """The face set's name for ``source``: its resolved path, else a unique file-name match."""
        real = str(source.path.resolve())
        if any(k[0] == real for k in self.faces):
            return real
        same = self.by_name.get(source.path.name, set())
        return next(iter(same)) if len(same) == 1 else None

    def landmarks(self, key: str | None, frame: int) -> list[np.ndarray]:
        return [] if key is None else [lm for _, lm in self.faces.get((key, frame), [])]


# ----------------------------------------------------------------------------------------------
# Planning: every check that can fail, before a byte is written.


def _check_options(o: ConvertOptions) -> None:
    problems = []
    if o.color not in blend.COLOR_MODES:
        problems.append(f"--color must be one of {', '.join(blend.COLOR_MODES)}, got {o.color!r}")
    if o.blend not in blend.BLEND_MODES:
        problems.append(f"--blend must be one of {', '.join(blend.BLEND_MODES)}, got {o.blend!r}")
    if not -0.5 < o.erode < 0.5:
        problems.append(f"--erode must be in (-0.5, 0.5) (a fraction of the face crop), got {o.erode}")
    if not 0 <= o.blur <= 0.5:
        problems.append(f"--blur must be in [0, 0.5], got {o.blur}")
    if o.batch_size < 1:
        problems.append(f"--batch-size must be >= 1, got {o.batch_size}")
    if o.workers is not None and o.workers < 1:
        problems.append(f"--workers must be >= 1, got {o.workers}")
    if not o.identity_threshold > 0:
        problems.append(f"--identity-threshold must be > 0, got {o.identity_threshold}")
    if o.faces is not None and o.identity:
        problems.append("--faces and --identity both choose the faces to swap; give one of them")
    if problems:
        raise ConvertError("; ".join(problems))


def _relative_name(source: Source, inputs: Sequence[str | Path]) -> Path:
    """The source's path inside the folder input it was found in, or its file name."""
    for raw in inputs:
        folder = Path(raw)
        if folder.is_dir():
            try:
                return source.path.relative_to(folder)
            except ValueError:
                continue
    return Path(source.path.name)


def _jobs(sources: list[Source], inputs: Sequence[str | Path], output: Path, frames: bool) -> list[Job]:
    jobs, taken = [], {}
    for s in sources:
        rel = _relative_name(s, inputs)
        if s.kind == "video":
            out = output / (rel.with_suffix("") if frames else rel)
        else:
            out = output / rel.with_suffix(output_suffix(rel.suffix))
        if out.resolve() == s.path.resolve():
            raise ConvertError(f"-o {output}: converting {s.name} would overwrite it; choose another output folder")
        if out in taken:
            raise ConvertError(f"{s.name} and {taken[out]} would both be written to {out}; "
                               "convert them into separate output folders")
        taken[out] = s.name
        jobs.append(Job(s, out))
    return jobs


def plan_convert(inputs: Sequence[str | Path], output: str | Path, model_path: str | Path,
                 options: ConvertOptions) -> ConvertPlan:
    """Check the request and list the work; raises a FaceswapLiteError (and writes nothing) if it is wrong."""
    if not inputs:
        raise ConvertError("give at least one photo, video or folder to convert")
    output = Path(output)
    _check_options(options)
    loaded = load_model(model_path, options.to, options.faces, options.device)
    sources = find_sources(inputs, exclude=output)
    if not sources:
        raise ConvertError(f"no photos or videos found in {', '.join(map(str, inputs))}")
    check_output_folder(output, ConvertError, "-o")
    jobs = _jobs(sources, inputs, output, options.frames)
    total = 0
    for job in jobs:
        if job.source.kind == "video":
            try:
                total += probe(job.source.path).frames
            except VideoReadError:
                pass  # reported (and counted) when its turn comes
        else:
            total += 1
    faceset = FaceIndex.read(options.faces) if options.faces is not None else None
    detector = None if faceset else DetectorSpec.check(options.detector, options.detector_settings,
                                                       options.plugins_dirs)
    references = identity_references(options.identity, detector) if options.identity else None
    return ConvertPlan(options, output, loaded, jobs, detector, faceset, references, total)


# ----------------------------------------------------------------------------------------------
# The main loop.


@dataclass
class _Frame:
    index: int
    rgb: np.ndarray
    found: Future | Done  # -> (landmarks list, seconds)
    deliver: Callable[[np.ndarray], None]
    tracks: FaceTracks | None


class Converter:
    """Runs a plan: the detector pool, the window of frames in flight, model batches, blending.

    The detector processes start once, on entering, and serve every :meth:`run` (benchmarks run
    a plan several times); one worker runs inline, in this process.

    >>> with Converter(plan) as converter:     # doctest: +SKIP
    ...     summary = converter.run()
    """

    def __init__(self, plan: ConvertPlan) -> None:
        self.plan = plan
        self.o = plan.options
        self.progress: Callable[[int, int], None] | None = None
        self.summary = ConvertSummary(output=plan.output, inputs=len(plan.jobs))
        self.workers = self.o.worker_count() if plan.detector is not None else 1
        self._pool: ProcessPoolExecutor | None = None
        self._window: deque[_Frame] = deque()
        self._chunk = max(self.o.batch_size, 2 * self.workers)

    def __enter__(self) -> Converter:
        if self.plan.detector is not None:
            args = (self.plan.detector, self.plan.references, self.o.identity_threshold)
            if self.workers > 1:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=init_worker, initargs=args)
            else:
                init_worker(*args, pooled=False)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:  # drop what is queued (Ctrl-C), let the frames in flight finish
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _find(self, index: int, rgb: np.ndarray, key: str | None) -> Future | Done:
        if self.plan.faceset is not None:
            return Done((self.plan.faceset.landmarks(key, index), 0.0))
        if self._pool is not None:
            return self._pool.submit(detect_faces, rgb)
        return Done(detect_faces(rgb))

    # -- the window
    def _push(self, frame: _Frame) -> None:
        self._window.append(frame)
        if len(self._window) >= 2 * self._chunk:
            self._process([self._window.popleft() for _ in range(self._chunk)])

    def _drain(self) -> None:
        while self._window:
            self._process([self._window.popleft() for _ in range(min(self._chunk, len(self._window)))])

    def _process(self, frames: list[_Frame]) -> None:
        """Align the faces of ``frames``, swap them in model batches, blend, deliver in order."""
        g = self.plan.model.geometry
        t0, waited = time.perf_counter(), 0.0
        aligned: list[tuple[int, Any]] = []  # (frame position, AlignedFace)
        for pos, fr in enumerate(frames):
            w = time.perf_counter()
            landmarks, seconds = fr.found.result()
            waited += time.perf_counter() - w
            self.summary.times["detect"] += seconds
            landmarks = [lm for lm in landmarks if _fits(lm, g, self.o.max_fit_error)]
            if fr.tracks is not None:
                landmarks = fr.tracks.update(fr.index, landmarks)
            aligned += [(pos, align_face(fr.rgb, lm, g.size, g.padding, g.centering)) for lm in landmarks]
        t1 = time.perf_counter()
        self.summary.times["detect"] += t1 - t0 - waited  # alignment: extract counts it with detection
        swapped = self._swap([a for _, a in aligned])
        t2 = time.perf_counter()
        self.summary.times["model"] += t2 - t1
        counts = Counter()
        for (pos, face), (image, mask) in zip(aligned, swapped):
            if self._blend(frames[pos].rgb, face, image, mask):
                counts[pos] += 1
        for pos, fr in enumerate(frames):
            if self.o.watermark:
                draw_watermark(fr.rgb, self.o.watermark)
            self.summary.frames += 1
            self.summary.faces_swapped += counts[pos]
            self.summary.frames_without_face += counts[pos] == 0
        self.summary.times["blend"] += time.perf_counter() - t2
        for pos, fr in enumerate(frames):
            fr.deliver(fr.rgb)
            if self.progress is not None:
                self.progress(1, counts[pos])

    def _swap(self, faces: list[Any]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Model outputs (R×R×3 float32, R×R mask or None) for aligned faces, in batches."""
        r = self.plan.model.resolution
        out: list[tuple[np.ndarray, np.ndarray | None]] = []
        for i in range(0, len(faces), self.o.batch_size):
            crops = [cv2.resize(f.crop, (r, r), interpolation=cv2.INTER_AREA) if f.crop.shape[0] != r else f.crop
                     for f in faces[i:i + self.o.batch_size]]
            x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
            image, mask = swap_batch(self.plan.model, x)
            images = image.permute(0, 2, 3, 1).contiguous().numpy()
            masks = [None] * len(crops) if mask is None else list(mask[:, 0].numpy())
            out += list(zip(images, masks))
        return out

    def _blend(self, rgb: np.ndarray, face: Any, image: np.ndarray, learned: np.ndarray | None) -> bool:
        """Blend one swapped face (model output at R) into its frame ``rgb`` in place."""
        size = face.crop.shape[0]
        image = blend.resize_to(image, size)
        if learned is None:
            mask = blend.face_mask(face.landmarks, size, face.valid_polygon)
        else:  # the model's mask, never over the crop's fill
            mask = blend.resize_to(learned, size)
            valid = valid_area(size, face.valid_polygon)
            mask = mask if valid is None else mask * valid
        mask = blend.refine_mask(mask, self.o.erode, self.o.blur)
        original = face.crop.astype(np.float32) / 255.0
        image = blend.match_color(image, original, mask, self.o.color)
        return blend.paste(rgb, image, mask, face.matrix, self.o.blend)

    # -- sources
    def _photos(self, jobs: list[Job]) -> None:
        for job in jobs:
            t0 = time.perf_counter()
            try:
                rgb = read_image(job.source.path)
            except SourceReadError as exc:
                self._skip(UNREADABLE_IMAGE, job.source, f"{exc}; skipped")
                continue
            self.summary.times["decode"] += time.perf_counter() - t0
            key = self.plan.faceset.key_of(job.source) if self.plan.faceset else None

            def deliver(out: np.ndarray, job: Job = job) -> None:
                t = time.perf_counter()
                job.out.parent.mkdir(parents=True, exist_ok=True)
                self.summary.written.append(write_photo(job.out, out))
                self.summary.times["encode"] += time.perf_counter() - t

            self._push(_Frame(0, rgb, self._find(0, rgb, key), deliver, None))
        self._drain()

    def _video(self, job: Job) -> None:
        try:
            reader = VideoSource(job.source.path)
        except VideoReadError as exc:
            self._skip(UNREADABLE_VIDEO, job.source, f"{exc}; skipped")
            return
        key = self.plan.faceset.key_of(job.source) if self.plan.faceset else None
        tracks = FaceTracks(float(reader.info.fps)) if self.o.smooth else None
        sink = _FramesSink(job.out) if self.o.frames else _VideoFileSink(job, reader.info)
        before = (self.summary.frames, self.summary.faces_swapped)
        try:
            with ThreadPoolExecutor(1) as encoder:  # one thread: frames are encoded in order
                pending: deque[Future] = deque()

                def deliver(out: np.ndarray) -> None:
                    pending.append(encoder.submit(self._timed, "encode", sink.write, out))
                    while len(pending) > self._chunk:
                        pending.popleft().result()

                for index, rgb in _prefetch(reader, self.summary.times, self._chunk):
                    self._push(_Frame(index, rgb, self._find(index, rgb, key), deliver, tracks))
                self._drain()
                while pending:
                    pending.popleft().result()
        except VideoReadError as exc:
            sink.discard()
            self._skip(UNREADABLE_VIDEO, job.source, f"{exc}; skipped")
            return
        except BaseException:
            self._window.clear()
            sink.discard()
            raise
        self.summary.written.append(self._timed("encode", sink.finish))
        if reader.truncated:
            self._skip(TRUNCATED_VIDEO, job.source, f"truncated or damaged: decoded {reader.decoded} of "
                       f"{reader.info.frames} frames ({reader.error or 'ended early'})")
        if self.summary.faces_swapped == before[1]:
            self.summary.faceless.append(job.source.name)
            self._warn(f"{job.source.name}: no face found in {self.summary.frames - before[0]} frames; "
                       "written unchanged")

    def _timed(self, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.summary.times[stage] += time.perf_counter() - t

    def _skip(self, reason: str, source: Source, message: str) -> None:
        self.summary.skipped.setdefault(reason, []).append(source.name)
        self._warn(f"{source.name}: {message}")

    def _warn(self, message: str) -> None:
        self.summary.warnings.append(message)
        log.warning("%s", message)

    def run(self, progress: Callable[[int, int], None] | None = None) -> ConvertSummary:
        """Convert the plan's inputs (see :func:`run_convert`); returns this run's summary."""
        start = time.perf_counter()
        self.progress = progress
        self.summary = ConvertSummary(output=self.plan.output, inputs=len(self.plan.jobs))
        self._window.clear()
        self.plan.output.mkdir(parents=True, exist_ok=True)
        try:
            self._photos([j for j in self.plan.jobs if j.source.kind == "image"])
            for job in self.plan.jobs:
                if job.source.kind == "video":
                    self._video(job)
        except KeyboardInterrupt:
            self._window.clear()
            self.summary.interrupted = True
        finally:
            self.summary.seconds = time.perf_counter() - start
        return self.summary


def _fits(landmarks: np.ndarray, g: Geometry, max_error: float) -> bool:
    """The landmarks fit the mean face (extract's check: a bad landmark fit makes a bad swap)."""
    m = alignment_matrix(landmarks, g.size, g.padding, g.centering)
    return fit_error(transform_points(m, landmarks), g.size, g.padding, g.centering) <= max_error


def _prefetch(frames: Iterable[tuple[int, np.ndarray]], times: Counter[str], ahead: int) -> Iterator[Any]:
    """Iterate ``frames`` in a thread, ``ahead`` items ahead (PyAV decodes without the GIL); the
    time spent decoding goes to ``times["decode"]``; an error is raised here, in order."""
    q: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    end = object()

    def work() -> None:
        it = iter(frames)
        try:
            while not stop.is_set():
                t = time.perf_counter()
                item = next(it, end)
                times["decode"] += time.perf_counter() - t
                q.put(item)
                if item is end:
                    return
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=work, daemon=True, name="convert-decode")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class _VideoFileSink:
    """A video written to ``.NAME.partial.EXT`` beside its final name, renamed by :meth:`finish`."""

    def __init__(self, job: Job, info: VideoInfo) -> None:
        self.final = job.out
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.final.with_name(f".{self.final.stem}.partial{self.final.suffix}")
        self.sink = VideoSink(self.tmp, info, PROVENANCE, audio_from=job.source.path)

    def write(self, rgb: np.ndarray) -> None:
        self.sink.write(rgb)

    def finish(self) -> Path:
        self.sink.close()
        os.replace(self.tmp, self.final)
        return self.final

    def discard(self) -> None:
        try:
            self.sink.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away
            pass
        self.tmp.unlink(missing_ok=True)


class _FramesSink:
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


def run_convert(plan: ConvertPlan, progress: Callable[[int, int], None] | None = None) -> ConvertSummary:
    """Convert the inputs of ``plan``; ``progress(frames, faces)`` gets increments as frames finish.
    Ctrl-C stops it: the summary then says ``interrupted`` and lists what was written whole."""
    try:
        with Converter(plan) as converter:
            return converter.run(progress)
    except KeyboardInterrupt:  # while the detector processes start or stop: nothing half-written
        return ConvertSummary(output=plan.output, inputs=len(plan.jobs), interrupted=True)
