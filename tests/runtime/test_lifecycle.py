"""`edgecv run` as a long-lived process: a camera that is not there fails in seconds with one line; SIGINT and
SIGTERM end it within 2 s whatever it is doing (opening, reconnecting, blocked in a read of a frozen server, full
queues); a stream server that goes away and comes back is reconnected, with events. Real ffmpeg servers on 127.0.0.1."""

import json
import signal
import time

import cv2

from tests.conftest import write_video
from tests.runtime.servers import EdgecvRun, MjpegServer, requires_ffmpeg


def model_of(tiny_export):
    return str(tiny_export[0] / "model_int8.onnx")


def events_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_camera_that_is_not_there_fails_within_12_s_in_one_line(tiny_export):
    run = EdgecvRun(model_of(tiny_export), "--camera", "57")
    rc, _, elapsed = run.finish(timeout=60)
    errors = [line for line in run.lines if line.startswith("edgecv: error:")]
    assert rc == 2 and elapsed <= 12, (rc, elapsed, run.stderr)
    assert len(errors) == 1 and "57: could not open it within 10 s" in errors[0] and "/dev/video57" in errors[0]
    assert "Traceback" not in run.stderr


def test_sigint_while_the_camera_is_opening_ends_within_2_s(tiny_export):
    run = EdgecvRun(model_of(tiny_export), "--camera", "57", "--open-timeout", "60")
    run.wait_for("source 57")
    time.sleep(1.0)
    assert run.signal_and_time(signal.SIGINT) <= 2.0 and run.proc.returncode == 0, run.stderr


@requires_ffmpeg
def test_a_stream_that_goes_away_is_reconnected_and_sigint_while_reconnecting_ends_it(tiny_export, shapes_video, tmp_path):
    events = tmp_path / "events.jsonl"
    with MjpegServer(shapes_video) as server:
        run = EdgecvRun(
            model_of(tiny_export),
            "--source",
            server.uri,
            "--events",
            str(events),
            "--save",
            str(tmp_path / "out.avi"),
            "--threads",
            "1",
        )
        try:
            run.wait_for("source http://127.0.0.1")
            deadline = time.time() + 30
            while time.time() < deadline and sum(e["event"] == "result" for e in events_of(events)) < 10:
                time.sleep(0.1)
            server.kill()
            run.wait_for("source lost", timeout=20)
            server.start()
            run.wait_for("reconnected", timeout=30)
            before = sum(e["event"] == "result" for e in events_of(events))
            deadline = time.time() + 30
            while time.time() < deadline and sum(e["event"] == "result" for e in events_of(events)) < before + 5:
                time.sleep(0.1)
            server.kill()  # and now stop it for good: SIGINT comes while the source is reconnecting
            deadline = time.time() + 20
            while time.time() < deadline and [e["event"] for e in events_of(events)].count("source_lost") < 2:
                time.sleep(0.1)
            time.sleep(1.5)
            assert run.signal_and_time(signal.SIGINT) <= 2.0, run.stderr
        finally:
            run.kill()
    got = events_of(events)
    kinds = [e["event"] for e in got]
    assert kinds.count("source_lost") == 2 and kinds.count("reconnected") == 1
    after = kinds.index("reconnected")
    assert kinds[:after].count("result") >= 10 and kinds[after:].count("result") >= 5
    assert run.proc.returncode == 0
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert cap.read()[0]  # the video was finalised: it plays


@requires_ffmpeg
def test_sigterm_while_blocked_in_a_read_of_a_frozen_server_ends_within_2_s(tiny_export, shapes_video, tmp_path):
    events = tmp_path / "events.jsonl"
    with MjpegServer(shapes_video) as server:
        run = EdgecvRun(model_of(tiny_export), "--source", server.uri, "--events", str(events), "--threads", "1")
        try:
            deadline = time.time() + 30
            while time.time() < deadline and sum(e["event"] == "result" for e in events_of(events)) < 5:
                time.sleep(0.1)
            server.pause()  # the connection stays open, nothing arrives: the capture thread blocks in its read
            time.sleep(1.5)
            assert run.signal_and_time(signal.SIGTERM) <= 2.0, run.stderr
        finally:
            run.kill()
    assert run.proc.returncode == 0 and "SIGTERM: finishing the current frame" in run.stderr
    assert all(json.loads(line) for line in events.read_text().splitlines())


def test_sigint_with_full_queues_ends_within_2_s_with_a_playable_video(tiny_export, shapes_dir, tmp_path):
    files = sorted(shapes_dir.rglob("*.jpg"))
    clip = write_video(tmp_path / "long.avi", [cv2.imread(str(files[i % len(files)])) for i in range(3000)])
    events = tmp_path / "events.jsonl"
    # a file source reads faster than inference: both queues stay full
    run = EdgecvRun(
        model_of(tiny_export),
        "--source",
        str(clip),
        "--events",
        str(events),
        "--save",
        str(tmp_path / "out.avi"),
        "--threads",
        "1",
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(events.read_text().splitlines() if events.exists() else []) < 20:
            time.sleep(0.1)
        assert run.signal_and_time(signal.SIGINT) <= 2.0, run.stderr
    finally:
        run.kill()
    assert run.proc.returncode == 0 and "SIGINT: finishing the current frame" in run.stderr
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert 20 <= n < 3000 and all(json.loads(line) for line in events.read_text().splitlines())
