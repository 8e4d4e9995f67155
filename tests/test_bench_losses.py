"""tools/bench_losses.py runs on a tiny size and writes its table (no timing thresholds: a benchmark
is not a test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "bench_losses.py"


def _load_bench():  # noqa: ANN202
    return load_script("tools/bench_losses.py")


def test_bench_runs_and_writes_table(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\n## something else\n\nkept\n")
    cmd = [sys.executable, str(SCRIPT), "--sizes", "32", "--batch", "2", "--repeats", "1", "--threads", "1",
           "--losses", "mae,ssim,ms_ssim,no_such_loss", "--out", str(out)]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no_such_loss: not registered yet" in result.stdout
    text = out.read_text()
    assert "## something else\n\nkept" in text  # other sections stay
    assert "## losses, forward + backward (cpu, fp32, 1 thread)" in text
    assert "| loss | px | ours ms" in text and "command: `python tools/bench_losses.py" in text
    for row in ("| mae | 32 |", "| ssim reflect | 32 |", "| ssim valid | 32 |", "| ms_ssim 2 scales | 32 |"):
        assert row in text, row

    # A second run replaces its own section instead of appending another.
    assert subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300).returncode == 0
    assert out.read_text().count("## losses, forward + backward (cpu, fp32, 1 thread)") == 1


def test_bench_mix(tmp_path: Path) -> None:
    bench = _load_bench()
    out = tmp_path / "benchmarks.md"
    assert bench.main(["--mix", "--sizes", "32", "--batch", "2", "--repeats", "1", "--threads", "1",
                       "--out", str(out)]) == 0
    text = out.read_text()
    assert "## loss mix vs its losses one by one (cpu, fp32, 1 thread)" in text
    assert "| mix: ssim+mae | 32 |" in text


@pytest.mark.parametrize("kind", ["item", "map"])
def test_lpl_references_match_the_plugin(kind: str) -> None:
    """The inline LPL references the benchmark labels as such (per item; the map of two pyramids,
    each level upsampled) compute the same numbers as the plugin."""
    import torch

    from faceswap_lite.registry import LOSSES, load_plugins

    load_plugins()
    bench, lpl = _load_bench(), LOSSES.build("lpl")
    x, y = torch.rand(2, 3, 64, 48, dtype=torch.float64), torch.rand(2, 3, 64, 48, dtype=torch.float64)
    ref, ours = (bench.lpl_reference(x, y), lpl.per_item(x, y)) if kind == "item" else \
        (bench.lpl_map_reference(x, y), lpl(x, y))
    torch.testing.assert_close(ref, ours, rtol=1e-9, atol=1e-12)


def test_faceswap_flag_needs_a_checkout(tmp_path: Path) -> None:
    bench = _load_bench()
    with pytest.raises(SystemExit, match="no lib/model/losses there"):
        bench.load_faceswap_lpl(str(tmp_path))
