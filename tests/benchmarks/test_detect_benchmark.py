"""benchmarks/detect.py runs end to end (shrunk to a minute or two); its figures come from the full run."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_detect_benchmark_prints_map_and_int8_drops(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "detect.py"),
        "--images",
        "24",
        "--input-size",
        "96",
        "--epochs",
        "1",
        "--calib-images",
        "8",
        "--max-drop",
        "100",
        "--formats",  # the TFLite converter's minute is the detector fixtures' (tests/conftest.py: det_export)
        "onnx",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test mAP50" in proc.stdout and "model_int8.onnx" in proc.stdout
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary["artifacts"]) == {"model_fp32.onnx", "model_int8.onnx"}
    assert 0 <= summary["map50_95"] <= summary["map50"] <= 1
