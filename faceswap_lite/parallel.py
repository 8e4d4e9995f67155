"""What the extract and convert pipelines share about their worker processes."""

from __future__ import annotations

import os
from typing import Any


def usable_cpus() -> int:
    """The CPUs this process may run on: the default number of worker processes."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Done:
    """A finished future, for work done in this process: queued in the same window as pool futures."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value
