"""tools/bench_extract.py runs (on a tiny size; benchmarks are not tests: no timing is checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_extract.py"


def test_bench_extract_runs_on_a_tiny_video(tmp_path: Path, capsys):
    spec = importlib.util.spec_from_file_location("bench_extract", TOOL)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    md = tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\n## other\n\nkept\n")
    assert bench.main(["--frames", "3", "--repeats", "1", "--workers", "1", "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "| detect x1 |" in out and "| extract x1 |" in out
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\n## other\n\nkept\n") and "\n## extract\n" in text
