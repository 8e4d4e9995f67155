"""What the benchmarks say about the machine they ran on, and the device sync before a clock read."""

from __future__ import annotations

import datetime as dt
import os

import torch

from faceswap_lite.machine import cpu_name  # re-exported for the benchmarks

__all__ = ["cpu_name", "machine_line", "sync"]


def machine_line() -> str:
    """When and where a benchmark ran, for its Markdown section: the date, the CPU, its cores and
    the load average (read at the end of the run)."""
    return (f"{dt.date.today().isoformat()}, {cpu_name()}, {os.cpu_count()} cores "
            f"(load average {os.getloadavg()[0]:.1f} at the end)")


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work, so a timer read after it measures the work (no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
