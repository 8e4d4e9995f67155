"""tools/bench_gpu.py runs end to end on a CPU at a tiny size (no timing thresholds: a benchmark is
not a test); a recipe whose model plugin is missing is skipped with a note."""

from __future__ import annotations

import json

import pytest
import torch

from .helpers import load_script


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    return load_script("tools/bench_gpu.py")


@pytest.fixture
def keep_threads():  # noqa: ANN201
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


TINY = ["--device", "cpu", "--tiny", "--precision", "fp32", "--threads", "1", "--peak-tflops", "1.0"]


def test_tiny_cpu_run_measures_every_column(bench, tmp_path, capsys, keep_threads):
    out, rows_file = tmp_path / "bench.md", tmp_path / "rows.json"
    bench.main([*TINY, "--models", "original-64,sae-256", "--compile-backend", "eager", "--out", str(out),
                "--json", str(rows_file)])
    doc = json.loads(rows_file.read_text())
    assert doc["device"] == "CPU" and doc["peak_tflops"] == 1.0
    rows = {r["model"]: r for r in doc["rows"]}
    assert set(rows) == {"original-64", "sae-256"}
    assert rows["original-64"]["px"] == 64 and rows["sae-256"]["px"] == 256
    for r in rows.values():
        assert "note" not in r, r
        assert r["batch"] == 2
        for key in ("eager_fps", "compiled_fps", "workers_fps", "device_fps", "gflop_step", "tflops", "compile_s"):
            assert r[key] > 0, (r["model"], key)
        for key in ("workers_wait_pct", "device_wait_pct"):
            assert 0 <= r[key] < 100, (r["model"], key)
        assert r["eager_mib"] is None and r["compiled_mib"] is None  # CUDA-only figure
    assert rows["sae-256"]["gflop_step"] > rows["original-64"]["gflop_step"]  # 256 px costs more
    text = capsys.readouterr().out
    assert "| model | px | batch |" in text and "| original-64 | 64 | 2 |" in text and "| sae-256 | 256 | 2 |" in text
    assert "`python tools/bench_gpu.py" in out.read_text()


def test_missing_model_plugin_is_skipped_with_a_note(bench, tmp_path, capsys, monkeypatch, keep_threads):
    recipe = tmp_path / "ghost.toml"
    recipe.write_text('[model]\nname = "no-such-model"\n')
    monkeypatch.setitem(bench.RECIPES, "ghost", str(recipe))
    bench.main([*TINY, "--models", "ghost", "--compile-backend", "none"])
    text = capsys.readouterr().out
    assert "note: ghost skipped: model plugin 'no-such-model' is not installed" in text
    assert "- ghost: skipped" in text


def test_bf16_peak_by_gpu_name(bench):
    assert bench.bf16_peak("NVIDIA H200", None) == 989.0
    assert bench.bf16_peak("NVIDIA H100 80GB HBM3", None) == 989.0
    assert bench.bf16_peak("NVIDIA H100 PCIe", None) == 756.0
    assert bench.bf16_peak("NVIDIA A100-SXM4-80GB", None) == 312.0
    assert bench.bf16_peak("NVIDIA L40S", None) == 362.0 and bench.bf16_peak("NVIDIA L4", None) == 121.0
    assert bench.bf16_peak("Some Future GPU", None) is None
    assert bench.bf16_peak("NVIDIA H200", 500.0) == 500.0
