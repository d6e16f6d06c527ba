"""Several sources through one model (`edgecv run --source A --source B`, `--sources FILE`): each stream keeps its
own tracker, events and video; inference is batched across streams when the backend takes a dynamic batch and gives
each frame the outputs a run of its own gives it; a stream that dies (a real ffmpeg MJPEG server on 127.0.0.1,
killed) ends alone while a file plays on to its end."""

import json
import time

import cv2
import numpy as np
import pytest

from edgecv.runtime.backends import create_backend
from edgecv.runtime.pipeline import PipelineSpec, run_pipeline
from edgecv.runtime.streams import name_sources, read_sources
from tests.conftest import write_video
from tests.export.test_detect_export import brightness_detector
from tests.runtime.servers import EdgecvRun, MjpegServer, requires_ffmpeg
from tests.runtime.test_pipeline import frame_count


def results_of(path, source=None):
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in events if e["event"] == "result" and (source is None or e.get("source") == source)]


def test_sources_are_named_from_name_equals_uri_files_and_credential_free_urls(tmp_path):
    odd = tmp_path / "a=b.avi"  # an existing file whose name has "=" is a file, not NAME=URI
    odd.write_bytes(b"")
    named = name_sources(
        [
            "door=rtsp://cam1/live",
            "rtsp://admin:secret@10.0.0.7:554/h264?a=b",
            "/videos/yard.mp4",
            "/other/yard.mp4",
            str(odd),
            "0",
        ]
    )
    assert named == [
        ("door", "rtsp://cam1/live"),
        ("rtsp://10.0.0.7:554/h264?a=b", "rtsp://admin:secret@10.0.0.7:554/h264?a=b"),
        ("yard.mp4", "/videos/yard.mp4"),
        ("yard.mp4#2", "/other/yard.mp4"),
        ("a=b.avi", str(odd)),
        ("0", "0"),
    ]
    listing = tmp_path / "cams.txt"
    listing.write_text("# shop\nfront=rtsp://10.0.0.5/s1\n\n  /videos/yard.mp4  \n")
    assert read_sources(listing) == ["front=rtsp://10.0.0.5/s1", "/videos/yard.mp4"]


def test_onnx_takes_a_batch_across_streams_only_when_every_output_is_per_frame(tiny_export, tmp_path):
    with create_backend(tiny_export[0] / "model_int8.onnx") as backend:
        assert backend.max_batch > 1
    with create_backend(brightness_detector(tmp_path / "blobs.onnx")) as backend:
        assert backend.max_batch == 1  # its graph is built for batch 1


def test_a_cpu_takes_one_frame_a_call_unless_asked_and_never_more_than_the_artifact_takes(tiny_export, tmp_path):
    from edgecv.runtime.inference import batch_size

    with (
        create_backend(tiny_export[0] / "model_int8.onnx") as onnx,
        create_backend(brightness_detector(tmp_path / "blobs.onnx")) as fixed,
    ):
        assert [batch_size(onnx, 4), batch_size(onnx, 4, 2), batch_size(onnx, 2, 8)] == [1, 2, 2]
        assert batch_size(fixed, 4, 4) == 1


def test_two_streams_are_batched_and_each_frame_gets_its_own_outputs(tiny_export, shapes_video, tmp_path):
    model = str(tiny_export[0] / "model_int8.onnx")
    other = write_video(tmp_path / "reversed.avi", [cv2.flip(f, 1) for f in _frames(shapes_video)])
    alone = {}
    for name, video in (("a", shapes_video), ("b", other)):
        run_pipeline(PipelineSpec(model=model, source=str(video), threads=1, events=str(tmp_path / f"{name}.jsonl")))
        alone[name] = results_of(tmp_path / f"{name}.jsonl")
    s = run_pipeline(
        PipelineSpec(
            model=model,
            source=(f"a={shapes_video}", f"b={other}"),
            threads=1,
            batch=2,
            events=str(tmp_path / "both.jsonl"),
            save=str(tmp_path / "out.avi"),
        )
    )
    assert s["frames"] == 72 and {n: st["frames"] for n, st in s["streams"].items()} == {"a": 36, "b": 36}
    assert sum(int(k) * v for k, v in s["batches"].items()) == 72 and s["batches"].get("2", 0) >= 18, s["batches"]
    for name in ("a", "b"):
        together = results_of(tmp_path / "both.jsonl", name)
        assert [e["frame"] for e in together] == list(range(36))
        for mine, own in zip(together, alone[name]):  # a batched frame's outputs are its own (rows not mixed up)
            assert [c["label"] for c in mine["top"]] == [c["label"] for c in own["top"]]
            np.testing.assert_allclose([c["score"] for c in mine["top"]], [c["score"] for c in own["top"]], atol=1e-4)
        assert frame_count(tmp_path / f"out-{name}.avi") == 36
        assert s["streams"][name]["stages"]["latency"]["n"] == 36
    telemetry = json.loads((tmp_path / "both.telemetry.json").read_text())
    assert set(telemetry["streams"]) == {"a", "b"} and telemetry["frames"] == 72


def test_each_stream_tracks_its_own_objects(tmp_path):
    model = brightness_detector(tmp_path / "blobs.onnx")  # batch 1: streams take turns
    frames = []
    for t in range(30):
        img = np.zeros((128, 128, 3), np.uint8)
        img[16:32, 8 + 2 * t : 24 + 2 * t] = 255
        img[40 + 2 * t : 56 + 2 * t, 96:112] = 255
        frames.append(img)
    video = write_video(tmp_path / "blobs.avi", frames)
    s = run_pipeline(
        PipelineSpec(
            model=str(model),
            source=(f"left={video}", f"right={video}"),
            conf=0.5,
            threads=1,
            batch=2,
            events=str(tmp_path / "events.jsonl"),
        )
    )
    assert s["batches"] == {"1": 60}  # batch 2 asked for, but this graph takes one frame: the streams took turns
    for name in ("left", "right"):
        ids = [sorted(b["track_id"] for b in e["boxes"]) for e in results_of(tmp_path / "events.jsonl", name)]
        assert len(ids) == 30 and sum(frame == [1, 2] for frame in ids) >= 27, ids  # ids of its own, from 1
        assert s["streams"][name]["tracks"]["confirmed"] == 2


def _frames(video):
    cap, out = cv2.VideoCapture(str(video)), []
    while (got := cap.read())[0]:
        out.append(got[1])
    return out


@requires_ffmpeg
def test_a_dying_stream_ends_alone_and_the_file_plays_to_its_end(tiny_export, shapes_dir, shapes_video, tmp_path):
    files = sorted(shapes_dir.rglob("*.jpg"))
    clip = write_video(tmp_path / "long.avi", [cv2.imread(str(files[i % len(files)])) for i in range(2000)])
    events = tmp_path / "events.jsonl"
    listing = tmp_path / "sources.txt"
    with MjpegServer(shapes_video) as server:
        listing.write_text(f"# one file, one camera\nfile={clip}\ncam={server.uri}\n")
        run = EdgecvRun(
            str(tiny_export[0] / "model_int8.onnx"),
            "--sources",
            str(listing),
            "--events",
            str(events),
            "--threads",
            "1",
            "--give-up-after",
            "1",
        )
        try:
            run.wait_for("2 sources (file, cam)")
            deadline = time.time() + 30
            while time.time() < deadline and (not events.exists() or len(results_of(events, "cam")) < 5):
                time.sleep(0.1)
            server.kill()
            rc, out, _ = run.finish(timeout=120)
        finally:
            run.kill()
    got = [json.loads(line) for line in events.read_text().splitlines()]
    lost = next(i for i, e in enumerate(got) if e["event"] == "source_lost" and e["source"] == "cam")
    failed = next(i for i, e in enumerate(got) if e["event"] == "source_failed" and e["source"] == "cam")
    file_frames = [e["frame"] for e in got if e["event"] == "result" and e["source"] == "file"]
    assert file_frames == list(range(2000))  # every frame, in order: the lost camera held nothing up
    assert sum(e["event"] == "result" and e["source"] == "file" for e in got[lost:failed]) > 0  # ran on meanwhile
    assert rc == 1 and "edgecv: error: stream cam: " in run.stderr and "no frames for 1 s" in run.stderr, run.stderr
    assert "file: frames 2000" in out and "FAILED" in out


@pytest.mark.parametrize("bad", [[], ["# nothing but a comment"]])
def test_a_sources_file_without_sources_is_a_usage_error(tiny_export, tmp_path, bad):
    from click.testing import CliRunner

    from edgecv.cli import cli

    listing = tmp_path / "sources.txt"
    listing.write_text("\n".join(bad))
    res = CliRunner().invoke(cli, ["run", str(tiny_export[0] / "model_int8.onnx"), "--sources", str(listing)])
    assert res.exit_code == 2 and "no sources in it" in res.output


def test_the_thread_plan_fills_the_cores_with_what_is_not_given():
    from edgecv.runtime.inference import thread_plan

    plans = [thread_plan(4), thread_plan(4, threads=2), thread_plan(4, workers=1), thread_plan(4, 3, 2), thread_plan(2, 3)]
    assert [(p.workers, p.threads) for p in plans] == [(4, 1), (2, 2), (1, 4), (2, 3), (1, 3)]


def test_each_worker_gets_a_backend_it_may_call_alongside_the_others(tiny_export, tmp_path, monkeypatch):
    from edgecv.runtime.inference import ThreadPlan, worker_backends
    from tests.fake_tensorrt import FakeCudart
    from tests.runtime.test_backends import _fake_engine

    with create_backend(tiny_export[0] / "model_int8.onnx", threads=1) as onnx:
        backends, plan = worker_backends(onnx, ThreadPlan(3, 1), batchable=True)
        assert backends == [onnx] * 3 and plan.workers == 3  # one session: onnxruntime's run is thread-safe
    with create_backend(tiny_export[0] / "model_int8.tflite", threads=1) as lite:
        backends, plan = worker_backends(lite, ThreadPlan(2, 1), batchable=True)
        assert plan.workers == 2 and backends[0] is lite and backends[1] is not lite  # an interpreter a worker
        inputs = np.random.default_rng(0).integers(-128, 127, (1, *lite._in["shape"][1:]), dtype=np.int8)
        np.testing.assert_array_equal(backends[1].infer(inputs)[0], lite.infer(inputs)[0])
        backends[1].close()
        one, plan = worker_backends(lite, ThreadPlan(2, 1), batchable=False)  # a stage with its own calls: not shared
        assert one == [lite] and plan.workers == 1 and "one call at a time" in plan.why
    with create_backend(_fake_engine(tmp_path, monkeypatch, FakeCudart())) as engine:
        assert engine.replica() is None  # one execution context
        one, plan = worker_backends(engine, ThreadPlan(2, 1), batchable=True)
        assert one == [engine] and plan.workers == 1 and "GPU" in plan.why


def test_warm_up_calls_each_session_once_on_a_blank_frame(tiny_export):
    from edgecv.runtime.inference import warm_up

    with create_backend(tiny_export[0] / "model_int8.tflite", threads=1) as lite, lite.replica() as other:
        calls = []
        for b in (lite, other):
            b.infer = lambda x, b=b, infer=b.infer: calls.append((b, x.shape, x.dtype)) or infer(x)
        warm_up([lite, other, lite])  # a backend listed twice (one session shared by workers) is called once
        shape = (1, *lite._in["shape"][1:])
        assert calls == [(lite, shape, lite._in["dtype"]), (other, shape, lite._in["dtype"])]


def test_workers_infer_frames_side_by_side_and_each_stream_finishes_them_in_order(
    tiny_export, shapes_video, tmp_path, monkeypatch
):
    """Three workers whose calls take random times (so they complete out of order): every frame's result is the one
    a single worker gives it, in frame order, and the calls did overlap."""
    import random
    import threading

    from edgecv.runtime.backends import ort

    model = str(tiny_export[0] / "model_int8.onnx")
    run_pipeline(PipelineSpec(model=model, source=str(shapes_video), workers=1, events=str(tmp_path / "one.jsonl")))
    real, lock, state, rng = ort.OrtBackend.infer, threading.Lock(), {"live": 0, "peak": 0}, random.Random(0)

    def slow(self, x):
        with lock:
            state["live"] += 1
            state["peak"] = max(state["peak"], state["live"])
            delay = rng.uniform(0.005, 0.03)
        time.sleep(delay)
        try:
            return real(self, x)
        finally:
            with lock:
                state["live"] -= 1

    monkeypatch.setattr(ort.OrtBackend, "infer", slow)
    s = run_pipeline(
        PipelineSpec(model=model, source=str(shapes_video), workers=3, threads=1, events=str(tmp_path / "three.jsonl"))
    )
    assert (s["workers"], s["threads"]) == (3, 1) and state["peak"] >= 2, state
    one, three = results_of(tmp_path / "one.jsonl"), results_of(tmp_path / "three.jsonl")
    assert [e["frame"] for e in three] == list(range(frame_count(shapes_video))) == [e["frame"] for e in one]
    for a, b in zip(one, three):
        assert [c["label"] for c in a["top"]] == [c["label"] for c in b["top"]]
        np.testing.assert_allclose([c["score"] for c in a["top"]], [c["score"] for c in b["top"]], atol=1e-5)


def test_a_run_ends_when_its_last_frame_is_done_not_at_a_later_poll(tiny_export, shapes_video, tmp_path, monkeypatch):
    """The threads hand the end on (the last source out queues it for the workers, run() for the finish threads)
    instead of each noticing it at its next poll: with the poll at 5 s, 2 streams x 36 frames through 2 workers end
    in well under one poll (before, the run's wall time held three polls after its last frame)."""
    from edgecv.runtime import streams

    monkeypatch.setattr(streams, "_POLL", 5.0)
    model = str(tiny_export[0] / "model_int8.onnx")
    s = run_pipeline(
        PipelineSpec(
            model=model, source=(f"a={shapes_video}", f"b={shapes_video}"), workers=2, threads=1, events=str(tmp_path / "e.jsonl")
        )
    )
    assert s["frames"] == 2 * frame_count(shapes_video)
    assert s["wall_s"] < 5.0, s["wall_s"]  # from the first frame to the run's end, the threads joined


def test_a_tracked_detector_keeps_its_ids_with_several_workers(tmp_path):
    model = brightness_detector(tmp_path / "blobs.onnx")
    frames = []
    for t in range(30):
        img = np.zeros((128, 128, 3), np.uint8)
        img[16:32, 8 + 2 * t : 24 + 2 * t] = 255
        img[40 + 2 * t : 56 + 2 * t, 96:112] = 255
        frames.append(img)
    video = write_video(tmp_path / "blobs.avi", frames)
    ids = {}
    for workers in (1, 2):
        events = tmp_path / f"w{workers}.jsonl"
        run_pipeline(PipelineSpec(model=str(model), source=str(video), conf=0.5, workers=workers, events=str(events)))
        ids[workers] = [sorted((b["track_id"], tuple(b["xyxy"])) for b in e["boxes"]) for e in results_of(events)]
    assert ids[1] == ids[2] and len(ids[2]) == 30  # the tracker saw the frames in order: the same tracks, the same ids
