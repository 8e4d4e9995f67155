"""TensorBoard for a run folder, served in-process on localhost."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from .errors import FaceswapLiteError
from .runfolder import RunFolder

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_tensorboard(run_dir: str | Path, port: int = 6006, host: str = "127.0.0.1") -> str:
    """Start TensorBoard on ``run_dir``'s logs in a background thread; return its URL.

    Accepts a run folder (uses its ``tb/``) or a folder of run folders (compares runs).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FaceswapLiteError(f"run folder {str(run_dir)!r} does not exist; train first with 'faceswap-lite train'")
    tb = RunFolder(run_dir).tb
    logdir = tb if tb.is_dir() else run_dir
    if not any(logdir.rglob("events.out.tfevents.*")):
        raise FaceswapLiteError(f"no TensorBoard logs under {logdir}; is {run_dir} a run folder?")
    from tensorboard import program

    tb = program.TensorBoard()
    tb.configure(argv=[None, "--logdir", str(logdir), "--port", str(port), "--host", host,
                       "--reload_interval", "5", "--load_fast", "false"])
    try:
        url = tb.launch()
    except program.TensorBoardPortInUseError:
        raise FaceswapLiteError(f"port {port} is in use; pick another with --port") from None
    return url
