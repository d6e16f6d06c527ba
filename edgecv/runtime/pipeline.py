"""``edgecv run``: source -> preprocess -> backend -> postprocess -> drift/telemetry -> sinks.

Three threads overlap the work of consecutive frames: one reads and preprocesses frame n+1 while the main
thread runs inference on frame n and another postprocesses and writes frame n-1 (OpenCV, onnxruntime and
LiteRT release the GIL while they work). Queues hold at most two frames, so a live camera is never more
than a couple of frames behind. SIGINT/SIGTERM finish the frame in flight, close the video (it plays) and
flush the events.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecv.errors import EdgecvError
from edgecv.runtime.backends import create_backend
from edgecv.runtime.drift import DriftMonitor
from edgecv.runtime.postprocess import get_postprocess
from edgecv.runtime.preprocess import prepare_frame
from edgecv.runtime.sinks import EventsSink, VideoSink, WindowSink
from edgecv.runtime.sources import open_source
from edgecv.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)
_END = object()


@dataclass(frozen=True)
class PipelineSpec:
    model: str
    source: str
    threads: int | None = None
    backend: str | None = None
    conf: float = 0.25
    iou: float = 0.45
    topk: int = 3
    max_frames: int | None = None
    save: str | None = None
    events: str | None = None
    show: bool = False
    telemetry: str | None = None
    capture_drift: str | None = None
    drift: bool = True
    stats_every_s: float = 0.0
    give_up_after_s: float | None = None  # live sources: stop after this long without frames (None: keep trying)
    backend_options: tuple[tuple[str, Any], ...] = ()  # e.g. (("preferred_providers", (...)),) from a device profile
    gallery: str | None = None  # face embedders: the enrolment gallery (SQLite) to match against
    face_detector: str = "haar"  # haar | haar:FILE.xml | yunet:FILE.onnx | an edgecv detector artifact
    match_threshold: float | None = None  # None: the threshold calibrated at export (artifact metadata)
    event_cooldown_s: float = 5.0  # face events: one per person per this many seconds of stream time


class _Stop:
    """Set by SIGINT/SIGTERM (installed only in the main thread) or by the caller."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        log.warning("%s: finishing the current frame and closing the outputs", signal.Signals(signum).name)
        self.event.set()

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def default_threads() -> int:
    """Inference threads when not given: all cores but one, which capture, preprocessing, postprocessing and
    the sinks run on (on 2 cores: 197 fps end to end with 1 inference thread vs 145 with 2, lite0 int8 ONNX)."""
    return max(1, (os.cpu_count() or 2) - 1)


def run_pipeline(spec: PipelineSpec, stop: threading.Event | None = None) -> dict[str, Any]:
    backend = create_backend(spec.model, name=spec.backend, threads=spec.threads or default_threads(),
                             **dict(spec.backend_options))
    meta = backend.meta
    post = get_postprocess(meta.task)
    drift = None
    if spec.drift and meta.drift:
        drift = DriftMonitor(meta.drift, capture_dir=spec.capture_drift)
    elif spec.capture_drift:
        raise EdgecvError(f"{spec.model}: carries no drift reference (re-export it with this edgecv) for --capture-drift")
    faces = _FaceStage(spec, meta) if meta.task == "embed" else None
    source = open_source(spec.source, give_up_after=spec.give_up_after_s)
    sinks: list[Any] = []
    events = None
    try:  # outputs are opened last, so a bad option above leaves no empty files behind
        if spec.save:
            sinks.append(VideoSink(spec.save, getattr(source, "fps", 30.0) or 30.0))
        if spec.events:
            events = EventsSink(spec.events)
            sinks.append(events)
        if spec.show:
            sinks.append(WindowSink())
    except BaseException:
        source.close()
        for sink in sinks:
            sink.close()
        raise
    tel = Telemetry()
    q_in: queue.Queue = queue.Queue(maxsize=2)
    q_out: queue.Queue = queue.Queue(maxsize=2)
    errors: list[BaseException] = []

    with _Stop() as stopper:
        halt = stopper.event if stop is None else stop

        def produce() -> None:
            try:
                it, n = iter(source), 0
                while not halt.is_set() and not stopper.event.is_set():
                    t0 = time.perf_counter()
                    frame = next(it, None)
                    if frame is None:
                        break
                    t1 = time.perf_counter()
                    tel.add("capture_wait", (t1 - t0) * 1e3)
                    if faces is None:
                        x, tf = prepare_frame(frame.bgr, meta, "BGR")
                        x = x[None]
                    else:  # one input per face chip; tf holds the faces' frame boxes
                        found = faces.frontend.detect(frame.bgr)
                        t_det = time.perf_counter()
                        tel.add("face_detect", (t_det - t1) * 1e3)
                        x, tf = faces.frontend.inputs(frame.bgr, found)
                        t1 = t_det  # preprocess: chips and tensors, after detection
                    tel.add("preprocess", (time.perf_counter() - t1) * 1e3)
                    q_in.put((frame, x, tf))
                    n += 1
                    if spec.max_frames and n >= spec.max_frames:
                        break
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)
            finally:
                q_in.put(_END)

        def consume() -> None:
            seen_events, last_stats = 0, time.monotonic()
            try:
                while (item := q_out.get()) is not _END:
                    frame, outputs, tf = item
                    t0 = time.perf_counter()
                    result = post(outputs, meta, k=spec.topk, conf=spec.conf, iou=spec.iou, transform=tf,
                                  **(faces.post_kwargs if faces else {}))
                    t1 = time.perf_counter()
                    tel.add("postprocess", (t1 - t0) * 1e3)
                    pending = list(source.stats.events[seen_events:])
                    seen_events += len(pending)
                    if faces is not None:
                        pending += faces.events(result, frame.index, frame.t)
                    if drift is not None:
                        pending += drift.observe(frame.bgr, result.confidence)
                    for sink in sinks:
                        sink.write(frame, result)
                    if events:
                        for ev in pending:
                            events.event(ev)
                    tel.add("sinks", (time.perf_counter() - t1) * 1e3)
                    tel.frame_done()
                    if spec.stats_every_s and time.monotonic() - last_stats >= spec.stats_every_s:
                        last_stats = time.monotonic()
                        s = tel.summary()
                        log.info("frames %d  fps %.1f  infer p50 %.2f ms", s["frames"], s["fps"],
                                 s["stages"].get("infer", {}).get("p50_ms", 0.0))
            except BaseException as exc:
                errors.append(exc)
                halt.set()
                while q_out.get() is not _END:  # drain so the main thread never blocks
                    pass

        producer = threading.Thread(target=produce, name="capture+preprocess", daemon=True)
        consumer = threading.Thread(target=consume, name="postprocess+sinks", daemon=True)
        producer.start()
        consumer.start()
        try:
            while (item := q_in.get()) is not _END:
                frame, x, tf = item
                t0 = time.perf_counter()
                outputs = backend.infer(x) if faces is None else faces.infer(backend, x)
                tel.add("infer", (time.perf_counter() - t0) * 1e3)
                q_out.put((frame, outputs, tf))
        finally:
            halt.set()
            q_out.put(_END)
            consumer.join()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q_in.get(timeout=0.05)
                except queue.Empty:
                    pass
            tel.end = time.perf_counter()
            source.close()
            for sink in sinks:
                sink.close()
            if faces is not None:
                faces.close()
    summary = tel.summary(source.stats)
    summary["model"], summary["backend"], summary["task"] = str(spec.model), backend.name, meta.task
    if faces is not None:
        summary["faces"] = faces.summary()
    if drift is not None:
        summary["drift"] = {"drifting": sorted(drift.drifting), "captured_frames": drift.captured}
    telemetry_path = spec.telemetry or (str(Path(spec.events).with_suffix(".telemetry.json")) if spec.events else None)
    if telemetry_path:
        tel.write(telemetry_path, source.stats)
    if errors:
        raise errors[0]
    return summary


class _FaceStage:
    """Face embedders in the pipeline: detect and chip every face before inference (in the capture thread), embed
    each face, match the embeddings against the gallery (reloaded when an enrolment lands) and emit face events."""

    def __init__(self, spec: PipelineSpec, meta) -> None:
        from edgecv.runtime.faces.enroll import FaceFrontend
        from edgecv.runtime.faces.events import FaceEvents
        from edgecv.runtime.faces.gallery import Gallery
        from edgecv.runtime.faces.match import LiveTemplates, embedder_stamp

        stamp = embedder_stamp(meta, spec.model)
        self.frontend = FaceFrontend(meta, spec.face_detector)
        self.events = FaceEvents(spec.event_cooldown_s)
        self.gallery = self.live = None
        if spec.gallery:
            self.gallery = Gallery(spec.gallery)
            self.gallery.check_embedder(stamp, spec.model)
            self.live = LiveTemplates(self.gallery)
            log.info("gallery %s: %d identities, match threshold %.3f", spec.gallery, len(self.live.templates),
                     spec.match_threshold if spec.match_threshold is not None else meta.thresholds.get("match", 0.5))
        else:
            log.warning("no --gallery: every face is reported as unknown")
        self.post_kwargs = {"gallery": self.live, "threshold": spec.match_threshold}
        self.dim = int((meta.decoder or {}).get("dim", 0))

    def infer(self, backend, xs):
        if not len(xs):
            return [np.zeros((0, self.dim), np.float32)]
        return [np.concatenate([backend.infer(xs[i : i + 1])[0] for i in range(len(xs))])]

    def summary(self) -> dict[str, Any]:
        return {"gallery": str(self.gallery.path) if self.gallery else None,
                "identities": len(self.live.templates) if self.live else 0, "gallery_reloads": self.live.reloads if self.live else 0}

    def close(self) -> None:
        if self.gallery is not None:
            self.gallery.close()


def apply_device(spec: PipelineSpec, device: str) -> PipelineSpec:
    """The profile's threads, execution providers / XNNPACK and default camera, where the spec leaves them open."""
    import dataclasses

    from edgecv.devices import load_device
    from edgecv.runtime.backends._base import backend_for

    profile = load_device(device)
    kind = spec.backend or backend_for(spec.model)
    options: dict[str, Any] = dict(spec.backend_options)
    if kind == "onnxruntime":
        options.setdefault("preferred_providers", profile.runtime.execution_providers)
    elif kind == "litert":
        options.setdefault("xnnpack", profile.runtime.xnnpack)
    return dataclasses.replace(spec, threads=spec.threads or profile.run_threads(), source=spec.source or profile.runtime.camera,
                               backend_options=tuple(options.items()))
