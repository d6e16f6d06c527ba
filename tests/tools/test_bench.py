"""`edgecv bench` on the tiny run's artifacts: one row per artifact, the JSON matches the table, no torch."""

import json
import os
import subprocess
import sys

from tests.runtime.test_preprocess import BLOCK_TORCH

FILES = ["model_fp16.tflite", "model_fp32.onnx", "model_fp32.tflite", "model_int8.onnx", "model_int8.tflite"]


def test_bench_rows_match_the_json_and_run_without_torch(tiny_export, tiny_run, tmp_path):
    out, _ = tiny_export
    code = (
        BLOCK_TORCH
        + f"""
import sys
from edgecv.cli import main
sys.argv = ['edgecv', 'bench', {str(out)!r}, '--run', {str(tiny_run)!r}, '--threads', '1', '--out', {str(tmp_path)!r}]
try:
    main()
finally:
    assert 'torch' not in sys.modules
"""
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )  # the peak's cache
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "bench.json").read_text())
    assert [r["file"] for r in rows] == FILES
    from edgecv.tools.inspect import inspect_onnx

    peak = json.loads((tmp_path / "cache" / "edgecv" / "peak.json").read_text())
    ((key, measured),) = peak.items()
    assert "threads 1" in key and measured["int8"] > 0 and measured["fp32"] > 0
    for r in rows:  # the roofline: MACs as inspect counts them, GMAC/s at p50, % of the peak of the row's precision
        assert r["macs"] > 0 and abs(r["gmacs"] - r["macs"] / r["p50_ms"] / 1e6) < 0.01
        if r["format"] == "onnx":
            assert r["macs"] == inspect_onnx(out / r["file"]).macs
            top = measured["int8" if r["precision"] == "int8" else "fp32"]
            assert r["peak_gmacs"] == top and abs(r["pct_of_peak"] - 100 * r["gmacs"] / top) < 0.1
        else:
            assert r["pct_of_peak"] is None  # no LiteRT peak is measured
    assert "% of peak: of this machine's dense GEMM through onnxruntime at 1 thread(s)" in proc.stdout
    table = [line for line in proc.stdout.splitlines() if line.startswith("| model_")]
    assert table == (tmp_path / "bench.md").read_text().splitlines()[2:]
    for r, line in zip(rows, table):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:4] == [r["file"], r["format"], r["precision"], "1"]
        assert cells[5] == f"top1 {r['value']:.4f}" and cells[6] == f"{r['p50_ms']:.2f}" and float(cells[8]) > 0
        fp32 = next(b for b in rows if b["format"] == r["format"] and b["precision"] == "fp32")
        assert abs(r["speedup_vs_fp32"] - fp32["p50_ms"] / r["p50_ms"]) < 1e-9


def _row(file, threads, p50):
    return {
        "file": file,
        "format": "onnx",
        "precision": "fp32",
        "size_mb": 1.0,
        "metric": "top1",
        "value": 0.9,
        "n": 10,
        "p50_ms": p50,
        "p99_ms": p50,
        "fps": 1000 / p50,
        "threads": threads,
        "speedup_vs_fp32": None,
    }


def test_benching_one_model_keeps_the_rows_of_the_others(tmp_path):
    from edgecv.tools.bench import write_bench

    write_bench([_row("a.onnx", 1, 2.0), _row("b.onnx", 1, 3.0)], tmp_path)
    _, md, kept = write_bench([_row("a.onnx", 1, 2.5)], tmp_path)  # a again: replaces only a's row
    assert kept == 1
    rows = json.loads((tmp_path / "bench.json").read_text())
    assert [(r["file"], r["p50_ms"]) for r in rows] == [("b.onnx", 3.0), ("a.onnx", 2.5)]
    write_bench([_row("a.onnx", 2, 1.5)], tmp_path)  # another thread count is another row
    rows = json.loads((tmp_path / "bench.json").read_text())
    assert [(r["file"], r["threads"]) for r in rows] == [("b.onnx", 1), ("a.onnx", 1), ("a.onnx", 2)]
    assert len([line for line in md.read_text().splitlines() if line.startswith("| ")]) == 1 + 3  # header + rows
