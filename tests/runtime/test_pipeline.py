"""`edgecv run` end to end on the tiny run's int8 artifacts: torch blocked, a playable video, JSON-lines
events, telemetry (signals and faults: tests/runtime/test_lifecycle.py)."""

import json
import subprocess
import sys

import cv2
import numpy as np
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
    return cli_torch_blocked(
        "run",
        str(model),
        "--source",
        str(video),
        "--save",
        str(tmp_path / "out.mp4"),
        "--events",
        str(tmp_path / "events.jsonl"),
        "--threads",
        "1",
        *extra,
    )


def cli_torch_blocked(*args: str) -> subprocess.CompletedProcess:
    """`edgecv ARGS...` in a process where importing torch, torchvision, timm or tensorflow fails, and which checks
    at exit that none got imported."""
    argv = ["edgecv", *args]
    code = (
        BLOCK_TORCH
        + f"""
import sys
from edgecv.cli import main
sys.argv = {argv!r}
try:
    main()
finally:
    assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules
"""
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("model", ["model_int8.onnx", "model_int8.tflite"])
def test_run_int8_artifact_on_a_video_with_torch_blocked(tiny_export, shapes_video, tmp_path, model):
    out, _ = tiny_export
    proc = run_torch_blocked(out / model, shapes_video, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "frames 36" in proc.stdout and "infer" in proc.stdout
    assert "XNNPACK delegate" not in proc.stderr  # LiteRT's own line per interpreter stays off the terminal
    assert frame_count(tmp_path / "out.mp4") == 36
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    results = [e for e in events if e["event"] == "result"]
    assert [e["frame"] for e in results] == list(range(36))
    assert all(e["task"] == "classify" and len(e["top"]) == 3 for e in results)
    telemetry = json.loads((tmp_path / "events.telemetry.json").read_text())
    assert telemetry["frames"] == 36 and set(telemetry["stages"]) >= {"preprocess", "infer", "postprocess", "sinks"}


def test_run_says_what_it_runs_and_refuses_options_of_another_task(tiny_export, shapes_video, tmp_path):
    out, _ = tiny_export
    proc = cli_torch_blocked("run", str(out / "model_int8.onnx"), "--source", str(shapes_video), "--threads", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = [line for line in proc.stderr.splitlines() if line.startswith("edgecv: run model_int8.onnx")]
    from edgecv.runtime.inference import usable_cores

    plan = f"{usable_cores()} inference worker(s) x 1 thread(s)"  # --threads 1: one worker a core
    summary = cli_torch_blocked("run", str(out / "model_int8.onnx"), "--source", str(shapes_video), "--threads", "1", "--json")
    assert summary.returncode == 0 and json.loads(summary.stdout)["frames"] == 36, summary.stdout[-2000:]
    assert len(start) == 1 and "(classify, int8) on onnxruntime" in start[0] and plan in start[0]
    assert "results are only summarised at the end" in start[0] and f"source {shapes_video}" in start[0]
    gallery = tmp_path / "faces.db"
    gallery.write_bytes(b"")
    for flag, value in (("--conf", "0.5"), ("--iou", "0.3"), ("--gallery", str(gallery))):
        proc = cli_torch_blocked("run", str(out / "model_int8.onnx"), "--source", str(shapes_video), flag, value)
        assert proc.returncode == 2 and f"edgecv: error: {flag} does not apply to" in proc.stderr, proc.stderr[-2000:]
        assert "(a classify artifact)" in proc.stderr and "Traceback" not in proc.stderr


def test_show_on_a_headless_opencv_is_refused_before_any_frame(tiny_export, shapes_video, tmp_path):
    out, _ = tiny_export
    proc = cli_torch_blocked(
        "run", str(out / "model_int8.onnx"), "--source", str(shapes_video), "--show", "--events", str(tmp_path / "e.jsonl")
    )
    assert proc.returncode == 2 and "--show: this OpenCV has no GUI" in proc.stderr and "pip install opencv-python" in proc.stderr
    assert not (tmp_path / "e.jsonl").exists()  # refused before any output was opened


def test_save_webm_is_vp8_which_browsers_play(tiny_export, shapes_video, tmp_path):
    out, _ = tiny_export
    proc = run_torch_blocked(out / "model_int8.onnx", shapes_video, tmp_path, "--save", str(tmp_path / "out.webm"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "out.webm: VP80 codec" in proc.stderr
    cap = cv2.VideoCapture(str(tmp_path / "out.webm"))
    assert int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().upper().startswith("VP8")
    assert frame_count(tmp_path / "out.webm") == 36


def test_a_trail_follows_its_object_and_starts_again_where_its_id_jumps_to_another():
    from edgecv.results import Detections
    from edgecv.runtime.sinks import Trails

    def frame(objects):  # (id, centre x, centre y) -> 20 px boxes
        xyxy = np.asarray([[x - 10, y - 10, x + 10, y + 10] for _, x, y in objects], np.float32)
        n = len(objects)
        ids = np.asarray([t for t, _, _ in objects], np.int64)
        return Detections(xyxy, np.full(n, 0.9, np.float32), np.zeros(n, np.int64), ("blob",) * n, ids)

    trails, drawn = Trails(), None
    for t in range(10):  # id 1 walks along y = 20, id 2 along y = 80, 3 px a frame
        drawn = trails.draw(np.zeros((100, 100, 3), np.uint8), frame([(1, 10 + 3 * t, 20), (2, 10 + 3 * t, 80)]))
    assert drawn[18:23, 15:35].any() and drawn[78:83, 15:35].any()  # each trail drawn along its own path
    # the tracker puts the ids back on each other's objects: each id jumps 60 px, three times its box's size
    drawn = trails.draw(np.zeros((100, 100, 3), np.uint8), frame([(1, 40, 80), (2, 40, 20)]))
    assert not drawn[25:75].any()  # no line across from one object to the other
    assert list(trails._points[1]) == [(40, 80)]  # id 1's trail starts again where it is now
    drawn = trails.draw(np.zeros((100, 100, 3), np.uint8), frame([(1, 43, 80), (2, 43, 20)]))
    assert drawn[78:83, 38:46].any() and not drawn[25:75].any()
    ball = Trails()  # a 20 px ball, 25 px a frame: faster than its size, steadily, keeps its trail
    for t in range(4):
        drawn = ball.draw(np.zeros((100, 100, 3), np.uint8), frame([(3, 10 + 25 * t, 50)]))
    assert len(ball._points[3]) == 4 and drawn[48:53, 15:80].any(axis=(0, 2)).all()  # one line along its path
