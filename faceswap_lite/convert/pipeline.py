"""The convert pipeline: photos and videos -> detect -> align -> model -> blend -> marked output.

Two steps, like extract, so nothing is written when the request is wrong:

>>> plan = plan_convert(["clip.mp4"], "out/", "runs/a", ConvertOptions())   # doctest: +SKIP
>>> summary = run_convert(plan, progress=lambda frames, faces: None)        # doctest: +SKIP

``plan_convert`` checks the options (:mod:`.options`), loads the model and lists the inputs,
found by extract's :func:`~faceswap_lite.extract.sources.find_sources`; their faces are detected
with extract's detector plugins (:mod:`.workers`) or, with ``--faces``, taken from a face set of
the same inputs (:mod:`.faceindex`). ``run_convert`` runs the plan (:class:`.converter.Converter`).
Output names follow the inputs (``OUT/clip.mp4``, ``OUT/photo.jpg``, folders keep their layout);
each is written under a hidden temporary name and renamed when complete, so Ctrl-C leaves none
half-written under its final name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..extract.detect import DetectorSpec
from ..extract.pipeline import identity_references
from ..extract.sources import Source, check_outside_inputs, find_sources
from ..frames import Interrupted
from ..fsutil import check_output_folder
from .converter import Converter, ConvertSummary
from .faceindex import FaceIndex
from .mark import output_suffix
from .model import LoadedModel, load_model
from .options import ConvertError, ConvertOptions
from .video import VideoReadError, probe


class NothingConvertedError(ConvertError):
    """Every input was skipped (unreadable): nothing was written. Exit 1, as extract's no-face error."""

    exit_code = 1


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
    warnings: list[str] = field(default_factory=list)  # found while planning (the CLI prints them)


# ----------------------------------------------------------------------------------------------
# Planning: every check that can fail, before a byte is written.


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


def _frame_count(job: Job) -> int:
    if job.source.kind != "video":
        return 1
    try:
        return probe(job.source.path).frames
    except VideoReadError:
        return 0  # reported (and counted) when its turn comes


def plan_convert(inputs: Sequence[str | Path], output: str | Path, model_path: str | Path,
                 options: ConvertOptions) -> ConvertPlan:
    """Check the request and list the work; raises a FaceswapLiteError (and writes nothing) if it is wrong."""
    if not inputs:
        raise ConvertError("give at least one photo, video or folder to convert")
    output = Path(output)
    options.check()
    loaded = load_model(model_path, options.to, options.faces, options.device, options.raw_weights)
    check_outside_inputs(inputs, output, ConvertError)
    sources = find_sources(inputs, exclude=output)
    if not sources:
        raise ConvertError(f"no photos or videos found in {', '.join(map(str, inputs))}")
    check_output_folder(output, ConvertError, "-o")
    jobs = _jobs(sources, inputs, output, options.frames)
    total = sum(_frame_count(job) for job in jobs)
    faceset = FaceIndex.read(options.faces) if options.faces is not None else None
    warnings = _faceless_inputs(jobs, faceset, options.faces) if faceset else []
    detector = None if faceset else DetectorSpec.check(options.detector, options.detector_settings,
                                                       options.plugins_dirs)
    references = identity_references(options.identity, detector) if options.identity else None
    return ConvertPlan(options, output, loaded, jobs, detector, faceset, references, total, warnings)


def _faceless_inputs(jobs: list[Job], faceset: FaceIndex, folder: str | Path) -> list[str]:
    """A warning per input the ``--faces`` set has no faces of (it would be copied unchanged);
    an error when it has none of any input (a face set of other inputs)."""
    missing = [job.source.name for job in jobs if faceset.key_of(job.source) is None]
    if len(missing) == len(jobs):
        names = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ConvertError(f"--faces {str(folder)!r} has no faces of any input ({names}): give the face set "
                           "extracted from these inputs, or leave --faces out to detect the faces")
    return [f"--faces {folder} has no faces of {name}: it is written unchanged" for name in missing]


def run_convert(plan: ConvertPlan, progress: Callable[[int, int], None] | None = None) -> ConvertSummary:
    """Convert the inputs of ``plan``; ``progress(frames, faces)`` gets increments as frames finish.
    Ctrl-C stops it (:func:`faceswap_lite.frames.running`): the summary then says ``interrupted``
    and lists what was written whole."""
    try:
        with Converter(plan) as converter:
            return converter.run(progress)
    except Interrupted as stop:
        return stop.summary
    except KeyboardInterrupt:  # while the detector processes start or stop: nothing half-written
        return ConvertSummary(output=plan.output, inputs=len(plan.jobs), interrupted=True)
