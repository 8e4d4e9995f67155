"""``faceset``: what a face set holds, and the sort commands that would clean it."""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import identity
from .run import default_output
from .scan import Scan, scan_faceset

# A face is "blurred" when its sharpness is under this share of the set's median: relative, because
# the Laplacian's variance depends on the crop size and the faces' texture (a face blurred with a
# Gaussian of σ = 2 px at 256² falls to about a tenth of its sharpness; see tests/test_sort.py).
BLUR_SHARE = 0.3


@dataclass
class FacesetReport:
    """The facts ``faceset`` prints; :meth:`lines` words them."""

    scan: Scan
    threshold: float
    sources: Counter[str] = field(default_factory=Counter)  # source -> faces
    videos: set[str] = field(default_factory=set)
    geometry: Counter[tuple[int, float, float]] = field(default_factory=Counter)
    versions: Counter[int] = field(default_factory=Counter)
    groups: list[int] = field(default_factory=list)  # faces per identity group, largest first
    far: int = 0  # faces farther than threshold from the set's identity
    blurred: int = 0
    median_sharpness: float = 0.0

    def lines(self) -> list[str]:
        s = self.scan
        n = len(s.faces)
        out = [f"Face set {s.folder}: {n} faces in {s.total} PNG files"]
        out += ["  " + line for line in s.skipped_lines()]
        photos = len(self.sources) - len(self.videos)
        out.append(f"Sources:  {len(self.sources)} ({len(self.videos)} videos, {photos} photos)")
        for (size, padding, centering), k in self.geometry.most_common():
            out.append(f"Crop:     {size} px, padding {padding:g}, centering {centering:g}: {k} faces")
        if len(self.geometry) > 1:
            out.append("          (mixed crop geometries: train on one of them; re-extract the others)")
        out.append("Metadata: " + ", ".join(f"version {v}: {k} faces" for v, k in sorted(self.versions.items()))
                   + (f" ({s.computed} descriptors computed now: older faces)" if s.computed else ""))
        people = [g for g in self.groups if g > 1]
        out.append(f"Identity: {len(people)} group(s) of one person with 2+ faces"
                   + (f" ({', '.join(map(str, people[:5]))}{', ...' if len(people) > 5 else ''} faces)" if people else "")
                   + f", {len(self.groups) - len(people)} face(s) alone; {self.far} face(s) farther than "
                   f"{self.threshold:g} from the set's identity (its largest group)")
        out.append(f"Blur:     {self.blurred} face(s) blurred (sharpness under {BLUR_SHARE:g}× the set's "
                   f"median, {self.median_sharpness:.1f})")
        out += self._commands()
        return out

    def _commands(self) -> list[str]:
        folder = str(self.scan.folder)
        todo = []
        if len(self.groups) > 1:
            todo.append(("face", "one folder per person: keep the one you want"))
        if self.far:
            todo.append(("identity", f"the {self.far} face(s) of other people come last"))
        if self.blurred:
            todo.append(("blur", f"the {self.blurred} blurred face(s) come last"))
        if not todo:
            return ["Nothing to clean: one person, no blurred face."]
        out = ["To clean it (copies; the set is left as it is):"]
        for by, why in todo:
            cmd = f"faceswap-lite sort {shlex.quote(folder)} --by {by} -o {shlex.quote(str(default_output(folder, by)))}"
            out.append(f"  {cmd}    # {why}")
        return out


def faceset_report(folder: str | Path, threshold: float = identity.DEFAULT_THRESHOLD) -> FacesetReport:
    """Read ``folder`` (sharpness and descriptors of every face) and gather the report's facts."""
    scan = scan_faceset(folder, sharp=True, descriptors=True)
    report = FacesetReport(scan, threshold)
    for f in scan.faces:
        report.sources[f.meta.source] += 1
        if f.meta.frame is not None:
            report.videos.add(f.meta.source)
        report.geometry[(f.meta.size, f.meta.padding, f.meta.centering)] += 1
        report.versions[f.meta.version] += 1
    descs = scan.descriptors()
    labels = identity.group(descs, threshold)
    report.groups = np.bincount(labels).tolist()
    centre = descs[labels == 0].mean(0)[None]
    report.far = int((identity.distances(descs, centre) > threshold).sum())
    sharp = np.array([f.sharpness for f in scan.faces], dtype=np.float64)
    report.median_sharpness = float(np.median(sharp))
    report.blurred = int((sharp < BLUR_SHARE * report.median_sharpness).sum())
    return report
