"""`edgecv run` end to end on the tiny run's int8 artifacts: torch blocked, a playable video, JSON-lines
events, telemetry (signals and faults: tests/runtime/test_lifecycle.py)."""

import json
import subprocess
import sys

import cv2
import pytest

from tests.runtime.test_preprocess import BLOCK_TORCH


def frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def run_torch_blocked(model, video, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    """`edgecv run MODEL --source VIDEO --save out.mp4 --events events.jsonl` in a process where importing torch,
    torchvision, timm or tensorflow fails, and which checks at exit that none got imported."""
    return cli_torch_blocked("run", str(model), "--source", str(video), "--save", str(tmp_path / "out.mp4"),
                             "--events", str(tmp_path / "events.jsonl"), "--threads", "1", *extra)


def cli_torch_blocked(*args: str) -> subprocess.CompletedProcess:
    """`edgecv ARGS...` in a process where importing torch, torchvision, timm or tensorflow fails, and which checks
    at exit that none got imported."""
    argv = ["edgecv", *args]
    code = BLOCK_TORCH + f"""
import sys
from edgecv.cli import main
sys.argv = {argv!r}
try:
    main()
finally:
    assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("model", ["model_int8.onnx", "model_int8.tflite"])
def test_run_int8_artifact_on_a_video_with_torch_blocked(tiny_export, shapes_video, tmp_path, model):
    out, _ = tiny_export
    proc = run_torch_blocked(out / model, shapes_video, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "frames 36" in proc.stdout and "infer" in proc.stdout
    assert frame_count(tmp_path / "out.mp4") == 36
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    results = [e for e in events if e["event"] == "result"]
    assert [e["frame"] for e in results] == list(range(36))
    assert all(e["task"] == "classify" and len(e["top"]) == 3 for e in results)
    telemetry = json.loads((tmp_path / "events.telemetry.json").read_text())
    assert telemetry["frames"] == 36 and set(telemetry["stages"]) >= {"preprocess", "infer", "postprocess", "sinks"}
