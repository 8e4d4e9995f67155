"""The frames engine: how extract and convert run work on frames, count what they skip and stop.

Both pipelines are the same skeleton, written here once:

- :class:`Workers`: the frame work on ``spawn``-ed processes (each ignores Ctrl-C and runs OpenCV
  and torch on one thread: a process per core already), or inline in this process for one worker;
- :class:`Window`: the work in flight, bounded (the decoded frames in memory) and consumed in
  submission order, so the output does not depend on the number of workers;
- the reasons a file is skipped (:data:`UNREADABLE_IMAGE`, :data:`UNREADABLE_VIDEO`,
  :data:`TRUNCATED_VIDEO`) and :class:`FramesSummary`: the files skipped, the warnings (each
  logged once) and the seconds per stage;
- the one interrupt policy, :func:`running`: on Ctrl-C the queued work is dropped, the frames in
  flight finish, nothing is left half-written (the pipelines write each file under a temporary
  name and rename it), and :class:`Interrupted` carries the summary of what was done.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2

from . import identity

log = logging.getLogger(__name__)
T = TypeVar("T")

# Why a file is skipped (or only partly read), as both summaries show it.
UNREADABLE_IMAGE = "unreadable image"
UNREADABLE_VIDEO = "unreadable video"
TRUNCATED_VIDEO = "truncated video (the frames that decode were converted)"


def usable_cpus() -> int:
    """The CPUs this process may run on: the default number of worker processes."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plural(count: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


class Done:
    """A finished future, for work done in this process: queued in the same window as pool futures."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        return self.value


# ----------------------------------------------------------------------------------------------
# Worker processes.


_STATE: Any = None  # a worker process's state: what ``init`` built there


def _start_process(init: Callable[..., Any], args: tuple[Any, ...], torch: bool) -> None:
    """Pool initializer: Ctrl-C is the main process's business; one thread per process."""
    global _STATE
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    if torch:
        identity.set_threads(1)
    _STATE = init(*args)


def _run(work: Callable[..., Any], *item: Any) -> Any:
    return work(_STATE, *item)


class Workers:
    """Runs ``work(state, *item)`` on ``count`` spawned processes, each with its own ``state =
    init(*args)`` (its detector: dlib objects cannot be pickled), or inline in this process when
    ``count`` is 1 (its state then belongs to this object).

    ``torch``: the work runs a torch network, on one thread per process (a worker that runs none
    never imports torch, which costs it seconds). ``inline_one_thread``: the inline worker runs
    torch on one thread too, restored on exit (extract: ``--workers 1`` uses one core; convert keeps
    this process's threads for its model).

    >>> with Workers(2, FaceFinder, (spec, None, 0.6), FaceFinder.find) as workers:   # doctest: +SKIP
    ...     pending = workers.submit(rgb)        # a Future, or a Done inline
    """

    def __init__(self, count: int, init: Callable[..., Any], args: tuple[Any, ...], work: Callable[..., Any],
                 *, torch: bool = True, inline_one_thread: bool = True) -> None:
        self.count = count
        self._init, self._args, self._work = init, args, work
        self._torch, self._inline_one_thread = torch, inline_one_thread
        self._pool: ProcessPoolExecutor | None = None
        self._inline = False
        self._state: Any = None
        self._threads_before = 0

    def __enter__(self) -> Workers:
        if self.count > 1:
            self._pool = ProcessPoolExecutor(self.count, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_process,
                                             initargs=(self._init, self._args, self._torch))
            return self
        if self._inline_one_thread:
            self._threads_before = identity.set_threads(1)
        self._state = self._init(*self._args)
        self._inline = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        if self._threads_before:
            identity.set_threads(self._threads_before)
            self._threads_before = 0
        self._inline, self._state = False, None
        if self._pool is not None:  # the interrupt policy: drop the queued work, let the frames in flight finish
            self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)
            self._pool = None

    def submit(self, *item: Any) -> Future[Any] | Done:
        if self._pool is not None:
            return self._pool.submit(_run, self._work, *item)
        assert self._inline, "use Workers as a context manager"
        return Done(self._work(self._state, *item))


# ----------------------------------------------------------------------------------------------
# The work in flight.


class Window:
    """Work in flight, handed to ``consume`` in submission order as ``[(payload, result), ...]``.

    Once more than ``limit`` items are held, the oldest are handed on ``batch`` at a time (convert's
    model batches); with ``eager``, so is every item at the head whose result is ready.
    """

    def __init__(self, consume: Callable[[list[tuple[Any, Any]]], None], limit: int, batch: int = 1,
                 eager: bool = False) -> None:
        self._consume = consume
        self._limit, self._batch, self._eager = limit, batch, eager
        self._items: deque[tuple[Any, Future[Any] | Done]] = deque()

    def push(self, payload: Any, pending: Future[Any] | Done) -> None:
        self._items.append((payload, pending))
        while len(self._items) > self._limit or (self._eager and self._items and self._items[0][1].done()):
            self._hand_on()

    def drain(self) -> None:
        """Hand on everything still in flight (the end of a source or of the run)."""
        while self._items:
            self._hand_on()

    def _hand_on(self) -> None:
        taken = [self._items.popleft() for _ in range(min(self._batch, len(self._items)))]
        self._consume([(payload, pending.result()) for payload, pending in taken])


# ----------------------------------------------------------------------------------------------
# The summary's share: skipped files, warnings, stage seconds, the interrupt.


@dataclass(kw_only=True)
class FramesSummary:
    """What every run counts: the files skipped by reason, the warnings, the seconds (in all and per
    stage) and whether Ctrl-C stopped it. Extract's and convert's summaries add their counts."""

    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> the files skipped
    warnings: list[str] = field(default_factory=list)
    times: Counter[str] = field(default_factory=Counter)  # seconds per stage
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def skipped_files(self) -> Counter[str]:
        """How many files each reason skipped."""
        return Counter({reason: len(names) for reason, names in self.skipped.items()})

    def warn(self, message: str) -> None:
        """Keep ``message`` for the summary and log it (once: the CLI shows the log)."""
        self.warnings.append(message)
        log.warning("%s", message)

    def skip(self, reason: str, name: str, detail: str) -> None:
        """Count the file ``name`` as skipped for ``reason`` and warn ``name: detail``."""
        self.skipped.setdefault(reason, []).append(name)
        self.warn(f"{name}: {detail}")

    def unreadable(self, kind: str, name: str, error: str) -> None:
        """A photo (``kind`` "image") or video that could not be read at all."""
        self.skip(UNREADABLE_IMAGE if kind == "image" else UNREADABLE_VIDEO, name, f"{error}; skipped")

    def truncated(self, name: str, decoded: int, declared: int, why: str | None = None) -> None:
        """A video that decoded fewer frames than its header declares (those that decode are used)."""
        detail = f"truncated or damaged: decoded {decoded} of the {declared} frames its header declares"
        self.skip(TRUNCATED_VIDEO, name, detail + (f" ({why})" if why else ""))

    def timed(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, its seconds added to ``times[stage]``."""
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.times[stage] += time.perf_counter() - start

    def skipped_lines(self, names: bool = False) -> list[str]:
        """``Skipped: N files: reason`` per reason, then (``names``) the first five files' names."""
        out = []
        for reason, files in sorted(self.skipped.items()):
            line = f"Skipped: {plural(len(files), 'file')}: {reason}"
            if names:
                line += ": " + ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
            out.append(line)
        return out


S = TypeVar("S", bound=FramesSummary)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run cleanly (see :func:`running`); ``summary`` counts what was done whole."""

    def __init__(self, summary: FramesSummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


@contextmanager
def running(summary: S) -> Iterator[S]:
    """A run of a pipeline: timed into ``summary.seconds``, and stopped by Ctrl-C the one way.

    A KeyboardInterrupt inside marks the summary ``interrupted`` and leaves as :class:`Interrupted`
    with it; on its way out, :class:`Workers` drops the queued work and lets the frames in flight
    finish, and the pipeline removes the file it was writing.
    """
    start = time.perf_counter()
    try:
        yield summary
    except KeyboardInterrupt:
        summary.interrupted = True
        raise Interrupted(summary) from None
    finally:
        summary.seconds = time.perf_counter() - start
