"""The export latency benchmark runs (shrunk to seconds); its figures come from the full run."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_export_latency_prints_fp32_int8_ratios_per_runtime_and_thread_count(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "export_latency.py"),
        "--models",
        "mobilenetv3_small_100",
        "--size",
        "64",
        "--runs",
        "5",
        "--threads",
        "1,2",
        "--ort-kernels",
        "--json",
        str(tmp_path / "r.json"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = re.findall(r"^\s+([12]) (onnx|tflite)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+([\d.]+)$", proc.stdout, re.M)
    assert sorted((t, f) for t, f, *_ in rows) == [("1", "onnx"), ("1", "tflite"), ("2", "onnx"), ("2", "tflite")]
    for _, _, fp32, int8, ratio, _ in rows:
        assert abs(float(fp32) / float(int8) - float(ratio)) < 0.02 * float(ratio) + 0.01
    assert (tmp_path / "r.json").is_file()
    # --ort-kernels: fp32, then each int8 variant on the default and the exact kernels, each against fp32
    row = r"^(fp32|int8 act|uint8 act|uint8 act, 7-bit w) +(default|exact) +([\d.]+) +([\d.]+)x +([\d.]+) +([\d.]+)$"
    kernels = re.findall(row, proc.stdout, re.M)
    assert [(v, k) for v, k, *_ in kernels] == [("fp32", "default")] + [
        (v, k) for v in ("int8 act", "uint8 act", "uint8 act, 7-bit w") for k in ("default", "exact")
    ], proc.stdout
    fp32_ms = float(kernels[0][2])
    for *_, ms, ratio, agree, cosine in kernels:
        assert abs(fp32_ms / float(ms) - float(ratio)) < 0.02 * float(ratio) + 0.01
        assert 0 <= float(agree) <= 1 and float(cosine) <= 1.0005
    assert kernels[0][4:] == ("1.00", "1.000")  # fp32 against itself
    figures = json.loads((tmp_path / "r.json").read_text())["mobilenetv3_small_100/ort_kernels"]
    assert set(figures) == {f"{v} {k}" for v, k, *_ in kernels}
