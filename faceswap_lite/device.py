"""Where and how a process computes: the device and precision, the process group, the seeds and RNG
state, and the guard that decides when Ctrl-C and SIGTERM interrupt.

The bottom floor of the engine: train, evaluate and convert import it; it imports none of them.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import FaceswapLiteError

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str | torch.device, option: str = "train.device") -> torch.device:
    """The one device parser: ``"auto"`` (a CUDA GPU when there is one, else the CPU), ``"cpu"``,
    ``"cuda"`` or ``"cuda:N"``, if it exists here. Anything else is a one-line error naming
    ``option`` (``--device`` for a command's option, ``train.device`` for the config key)."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise FaceswapLiteError(f"{option} {name!r}: not a device; use {DEVICE_NAMES}")
    if dev.type == "cuda":
        _check_gpu(dev, name, option)
    return dev


def _check_gpu(dev: torch.device, name: str, option: str) -> None:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    use_cpu = f"{option} cpu" if option.startswith("-") else f'{option} = "cpu"'
    if count == 0:
        raise FaceswapLiteError(f"{option} {name!r}: no CUDA GPU is available here; use {use_cpu}")
    if dev.index is not None and dev.index >= count:
        raise FaceswapLiteError(f"{option} {name!r}: this machine has {count} CUDA GPU(s), cuda:0 to "
                                f"cuda:{count - 1}; use one of them or {use_cpu}")


def resolve_precision(name: str, device: torch.device) -> str:
    """``"auto"`` (bf16 on a GPU that has it, else fp32) or the precision asked for, if ``device`` runs it."""
    if name == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise FaceswapLiteError("train.precision = \"fp16\" needs a CUDA GPU; use fp32 or bf16 on CPU")
    return name


@dataclass
class Dist:
    """This process's place in a distributed run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """Join the process group when started by torchrun (NCCL on GPUs, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as tdist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
    return Dist(rank, world, local)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The torch (and CUDA) generators' state and Python's, as plain tensors and lists (a checkpoint loads them
    with ``weights_only``)."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]) + [random.getstate()[2] or 0],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` saved; CUDA state from another GPU count is left as it is."""
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, IndexError):
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class Interrupts:
    """What Ctrl-C (SIGINT) and SIGTERM do inside a ``with`` block, in the main thread (elsewhere: nothing).

    ``Interrupts(Interrupts.HOLD)``: both wait until the block ends, then raise one KeyboardInterrupt,
    so work that must not be cut in two (the weights and the step counter changing together, a
    checkpoint being written) finishes first. ``Interrupts(Interrupts.RAISE)``: SIGTERM raises
    KeyboardInterrupt at once, as Ctrl-C does, so a run stopped by a job scheduler saves and exits
    like one stopped by hand. Guards nest: each puts back the handlers it found.
    """

    HOLD = "hold"
    RAISE = "raise"

    def __init__(self, mode: str) -> None:
        if mode not in (self.HOLD, self.RAISE):
            raise ValueError(f"Interrupts mode must be {self.HOLD!r} or {self.RAISE!r}, got {mode!r}")
        self.mode = mode
        self.caught = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        self.caught = False
        self._old = {}
        signals = (signal.SIGINT, signal.SIGTERM) if self.mode == self.HOLD else (signal.SIGTERM,)
        handler = self._hold if self.mode == self.HOLD else self._raise
        with contextlib.suppress(ValueError):  # not the main thread: signals are not delivered here
            for sig in signals:
                # A handler installed outside Python (getsignal: None) could not be put back: leave it.
                if signal.getsignal(sig) is not None:
                    self._old[sig] = signal.signal(sig, handler)
        return self

    def _hold(self, signum: int, frame: Any) -> None:
        self.caught = True

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def __exit__(self, exc_type: type[BaseException] | None, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        if self.caught and exc_type is None:
            raise KeyboardInterrupt
