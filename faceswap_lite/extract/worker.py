"""Extract's work on one frame: detect, filter, align, describe and write its faces.

A :class:`FrameWorker` lives in each worker process (:class:`faceswap_lite.frames.Workers`), or
inline in this one with one worker. Each face is written to a
temporary name and renamed (:func:`faceswap_lite.faceset.write_face`), so Ctrl-C leaves whole files.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import identity
from ..faceset import FaceMeta, write_face
from .align import align_face
from .detect import DetectorSpec, detector_for, face_landmarks
from .options import ExtractOptions
from .sources import Source, SourceReadError, read_image

# zlib's RLE strategy on Pillow's filtered PNG rows: on 256² face crops it encodes in ~60% of the CPU
# time of Pillow's default (level 3) and the files come out ~7% smaller (measured on 20 crops; see
# docs/extract.md). Any PNG reader decodes them as usual.
PNG_STRATEGY = zlib.Z_RLE

# Reasons a detected face is not written, as the summary shows them.
LOW_SCORE = "detector score below --min-score"
TOO_SMALL = "face smaller than --min-size"
TOO_MANY = "more than --max-faces in a frame"
BAD_LANDMARKS = "landmarks fit the template badly (--max-fit-error)"
OTHER_PERSON = "of other people (farther than --identity-threshold from every --identity reference)"


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
        if rgb is None:  # a photo: read it here, in the worker
            try:
                rgb = read_image(source.path)
            except SourceReadError as exc:
                return FrameResult(frames=0, error=str(exc))
        result = FrameResult()
        faces = list(enumerate(self.detector.detect(rgb)))
        result.found = len(faces)
        aligned = self._align(rgb, self._filter(faces, result), result)
        self._write(source, frame, rgb, aligned, result)
        return result

    def _filter(self, faces: list, result: FrameResult) -> list:
        """The faces that pass --min-score and --min-size, at most --max-faces of them (the largest)."""
        o = self.o
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
        return kept

    def _align(self, rgb: np.ndarray, kept: list, result: FrameResult) -> list:
        """(index, detection, landmarks, aligned face) of the kept faces whose landmarks fit the template."""
        o = self.o
        aligned = []
        for index, det in kept:
            landmarks = face_landmarks(self.detector, rgb, det.box)
            face = align_face(rgb, landmarks, o.size, o.padding, o.centering, o.fill)
            if not face.fit_error <= o.max_fit_error:  # also catches NaN
                result.skipped[BAD_LANDMARKS] += 1
            else:
                aligned.append((index, det, landmarks, face))
        return aligned

    def _write(self, source: Source, frame: int | None, rgb: np.ndarray, aligned: list,
               result: FrameResult) -> None:
        """Write the aligned faces (only the --identity person's, when given) with their metadata."""
        o = self.o
        h, w = rgb.shape[:2]
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
