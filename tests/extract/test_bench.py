"""tools/bench_extract.py runs (on a tiny size; benchmarks are not tests: no timing is checked)."""

from __future__ import annotations

from pathlib import Path

from ..helpers import load_script


def test_bench_extract_runs_on_a_tiny_video(tmp_path: Path, capsys):
    bench = load_script("tools/bench_extract.py")
    md = tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\n## other\n\nkept\n")
    assert bench.main(["--frames", "3", "--repeats", "1", "--workers", "1", "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "| detect x1 |" in out and "| extract x1 |" in out
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\n## other\n\nkept\n") and "\n## extract\n" in text
