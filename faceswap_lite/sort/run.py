"""``sort``: check the request, scan the set, rank it, then copy or move it (or only list it)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import identity
from ..faceset import list_faces
from .order import KEYS, Ranked, SortError, check_output, destinations, fill_output, rank, request_of
from .scan import Scan, scan_faceset


@dataclass
class SortResult:
    """What a sort did: the order, where each face went (empty for a dry run), and timings."""

    scan: Scan | None  # None when an unfinished sort was finished with its recorded plan
    by: str
    ranked: list[Ranked]
    targets: list[Path] = field(default_factory=list)
    output: Path | None = None
    seconds: float = 0.0
    already_there: int = 0  # faces an unfinished sort had placed (a re-run goes on with its plan)

    def lines(self) -> list[str]:
        """The order, one line per face: rank, (group,) key value, file name."""
        width = len(str(len(self.ranked)))
        if self.by == "face":
            return [f"{i + 1:>{width}}  group {r.group + 1:<3}  {r.value:8.4f}  {r.face.path.name}"
                    for i, r in enumerate(self.ranked)]
        return [f"{i + 1:>{width}}  {r.value:12.4f}  {r.face.path.name}" for i, r in enumerate(self.ranked)]


def default_output(folder: str | Path, by: str) -> Path:
    """``<FACESET>_by_<key>`` beside the face set."""
    folder = Path(folder)
    return folder.parent / f"{folder.name}_by_{by}"


def sort_faceset(folder: str | Path, by: str, output: str | Path | None = None, move: bool = False,
                 bins: int = 0, dry_run: bool = False, identity_refs: Sequence[str | Path] = (),
                 threshold: float = identity.DEFAULT_THRESHOLD) -> SortResult:
    """Rank the faces of ``folder`` by key ``by`` and copy them (``move``: move them) into
    ``output`` with rank prefixes; ``dry_run`` only ranks. Raises FaceswapLiteError subclasses, before
    writing anything, for a bad request. An ``output`` holding the same sort, unfinished (a full
    disk, Ctrl-C), is finished with the plan it recorded."""
    start = time.perf_counter()
    folder = Path(folder)
    _check_request(folder, by, bins, threshold, identity_refs)
    out = Path(output) if output is not None else default_output(folder, by)
    request = request_of(folder, by, bins, move)
    recorded = None if dry_run else check_output(folder, out, request)
    if recorded is not None:  # an unfinished sort: its plan, as the faces it moved are gone from the set
        sources, targets = [s for s, _ in recorded], [t for _, t in recorded]
        there = fill_output(out, sources, targets, move, request)
        return SortResult(None, by, [], targets, out, time.perf_counter() - start, there)
    references = None
    if identity_refs:
        from ..extract.pipeline import identity_references

        references = identity_references(identity_refs)
    key = KEYS[by]
    scan = scan_faceset(folder, sharp=key.sharp, descriptors=key.descriptors)
    ranked = rank(scan, by, references, threshold)
    result = SortResult(scan, by, ranked)
    if not dry_run:
        result.output = out
        result.targets = destinations(ranked, out, by, bins)
        fill_output(out, [r.face.path for r in ranked], result.targets, move, request)
    result.seconds = time.perf_counter() - start
    return result


def _check_request(folder: Path, by: str, bins: int, threshold: float, refs: Sequence[str | Path]) -> None:
    if by not in KEYS:
        from ..errors import did_you_mean

        raise SortError(f"--by {by!r} is not a sort key{did_you_mean(by, list(KEYS))}; keys: {', '.join(KEYS)}")
    if bins < 0:
        raise SortError(f"--bins must be >= 0 (0, the default, puts every face in one folder), got {bins}")
    if bins and by == "face":
        raise SortError("--bins does not apply to --by face (it makes one folder per person); drop --bins")
    if refs and by != "identity":
        raise SortError(f"--identity applies to --by identity only, not --by {by}")
    if not threshold > 0:
        raise SortError(f"--identity-threshold must be > 0, got {threshold}")
    list_faces(folder)  # raises for a missing folder or a file
