"""What the benchmarks say about the machine they ran on, and the device sync before a clock read."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work, so a timer read after it measures the work (no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
