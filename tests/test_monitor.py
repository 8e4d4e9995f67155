"""monitor: TensorBoard really serves a run's scalars over HTTP on a loopback port."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from faceswap_lite.monitor import free_port
from tests.helpers import run_cli


def test_monitor_serves_run_scalars(tmp_path):
    run = tmp_path / "run"
    writer = SummaryWriter(str(run / "tb"))
    for step in range(1, 6):
        writer.add_scalar("loss/total", 1.0 / step, step)
        writer.add_scalar("loss/a/ssim", 0.5 / step, step)
    writer.close()
    port = free_port()
    exe = Path(sys.executable).parent / "faceswap-lite"
    proc = subprocess.Popen([str(exe), "monitor", str(run), "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "TensorBoard for" in line:
                break
        assert f"http://127.0.0.1:{port}/" in line or f"http://localhost:{port}/" in line, lines
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        tags = {}
        while time.time() < deadline:
            with urllib.request.urlopen(f"{base}/data/plugin/scalars/tags", timeout=10) as r:
                tags = json.loads(r.read())
            if tags.get(".", {}).get("loss/total"):
                break
            time.sleep(0.5)
        assert {"loss/total", "loss/a/ssim"} <= set(tags["."]), tags
        url = f"{base}/data/plugin/scalars/scalars?run=.&tag=loss/total&format=json"
        with urllib.request.urlopen(url, timeout=10) as r:
            points = json.loads(r.read())
        assert [p[1] for p in points] == [1, 2, 3, 4, 5]
        assert abs(points[-1][2] - 0.2) < 1e-6
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_monitor_errors(tmp_path):
    exe = Path(sys.executable).parent / "faceswap-lite"
    res = subprocess.run([str(exe), "monitor", str(tmp_path / "missing")], capture_output=True, text=True)
    assert res.returncode != 0 and "does not exist" in res.stderr
    (tmp_path / "empty").mkdir()
    res = subprocess.run([str(exe), "monitor", str(tmp_path / "empty")], capture_output=True, text=True)
    assert res.returncode != 0 and "no TensorBoard logs" in res.stderr


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(tmp_path, port):
    res = run_cli(["monitor", str(tmp_path), "--port", port], expect=2)
    assert "Invalid value for '--port'" in res.output and "Traceback" not in res.output
