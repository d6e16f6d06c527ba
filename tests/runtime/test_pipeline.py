"""`edgecv run` end to end on the tiny run's int8 artifacts: torch blocked, a playable video, JSON-lines
events, telemetry; and SIGINT mid-run still leaves a playable video and flushed events."""

import json
import signal
import subprocess
import sys
import time

import cv2
import pytest

from tests.conftest import write_video
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


def test_sigint_mid_run_leaves_a_playable_video_and_flushed_events(tiny_export, shapes_dir, tmp_path):
    out, _ = tiny_export
    files = sorted(shapes_dir.rglob("*.jpg"))
    long_clip = write_video(tmp_path / "long.avi", [cv2.imread(str(files[i % len(files)])) for i in range(3000)])
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edgecv.cli", "run", str(out / "model_int8.onnx"), "--source",
                             str(long_clip), "--save", str(tmp_path / "out.mp4"), "--events", str(events),
                             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not events.exists() or len(events.read_text().splitlines()) < 20):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert "SIGINT: finishing the current frame" in stderr
    written = frame_count(tmp_path / "out.mp4")
    lines = events.read_text().splitlines()
    assert 20 <= written < 3000 and all(json.loads(line) for line in lines)  # every line complete JSON
    assert sum(json.loads(line)["event"] == "result" for line in lines) == written
