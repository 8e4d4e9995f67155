"""Landmark smoothing over video frames: a One-Euro filter per tracked face, against jitter.

The One-Euro filter (Casiez, Roussel & Vogel 2012, "1€ Filter: A Simple Speed-based Low-pass Filter
for Noisy Input in Interactive Systems", CHI) is a first-order low-pass whose cutoff rises with the
signal's (filtered) speed: a still face is smoothed hard, a moving one barely, so there is no lag on
fast motion. Speeds are measured in face sizes per second (the inner-landmark box), so the same
settings suit a small face and a large one.

>>> track = FaceTracks(fps=25.0)
>>> smoothed = track.update(0, [landmarks])  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MIN_CUTOFF = 1.0  # Hz: the cutoff of a still face (the paper's suggested start)
BETA = 20.0  # cutoff rise per face size per second of speed (tuned on tests/convert's pan and jitter)
D_CUTOFF = 1.0  # Hz: the cutoff of the speed estimate (the paper's value)
MATCH_DISTANCE = 0.5  # a face continues a track when its centre is within this many face sizes


def _alpha(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuro:
    """One-Euro filter over an array of values (e.g. 68×2 landmarks); ``scale`` converts a speed in
    value units per second into the units ``beta`` expects (here: 1 / face size)."""

    min_cutoff: float = MIN_CUTOFF
    beta: float = BETA
    d_cutoff: float = D_CUTOFF
    x: np.ndarray | None = None
    dx: np.ndarray | None = None

    def __call__(self, value: np.ndarray, dt: float, scale: float = 1.0) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.x is None:
            self.x, self.dx = value.copy(), np.zeros_like(value)
            return value.copy()
        speed = (value - self.x) / dt
        self.dx = self.dx + _alpha(self.d_cutoff, dt) * (speed - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx) * scale  # per value: an array
        self.x = self.x + _alpha(cutoff, dt) * (value - self.x)
        return self.x.copy()


def face_size(landmarks: np.ndarray) -> float:
    """Side of the inner-landmark box (points 17-67), pixels: the unit of speed and distance."""
    inner = np.asarray(landmarks, dtype=np.float64)[17:68]
    return float(max(np.ptp(inner[:, 0]), np.ptp(inner[:, 1]), 1.0))


@dataclass
class _Track:
    filter: OneEuro
    centre: np.ndarray
    last_frame: int


@dataclass
class FaceTracks:
    """Faces followed from frame to frame (nearest centre), each with its own filter; a track that
    misses a frame ends, so a face that leaves and returns starts afresh."""

    fps: float
    min_cutoff: float = MIN_CUTOFF
    beta: float = BETA
    tracks: list[_Track] = field(default_factory=list)

    def update(self, frame: int, faces: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Smoothed landmarks (68×2 source pixels) for the faces of ``frame``, in the order given."""
        dt = 1.0 / self.fps
        alive = [t for t in self.tracks if t.last_frame == frame - 1]
        out, taken, new_tracks = [], set(), []
        for lm in faces:
            lm = np.asarray(lm, dtype=np.float64)
            centre, size = lm[17:68].mean(0), face_size(lm)
            best = None
            for i, t in enumerate(alive):
                d = float(np.hypot(*(t.centre - centre))) / size
                if i not in taken and d < MATCH_DISTANCE and (best is None or d < best[0]):
                    best = (d, i)
            if best is None:
                track = _Track(OneEuro(self.min_cutoff, self.beta), centre, frame)
            else:
                taken.add(best[1])
                track = alive[best[1]]
            smoothed = track.filter(lm, dt, 1.0 / size)
            track.centre, track.last_frame = centre, frame
            new_tracks.append(track)
            out.append(smoothed)
        self.tracks = new_tracks
        return out
