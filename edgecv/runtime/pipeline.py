"""``edgecv run``: source -> stage (preprocess, backend, postprocess) -> drift/telemetry -> sinks.

The pipeline only wires and owns lifetimes; the work is the stage's (``runtime/stages.py``). Three threads overlap
consecutive frames: one reads and prepares frame n+1 while the main thread runs inference on frame n and another
finishes and writes frame n-1 (OpenCV, onnxruntime and LiteRT release the GIL while they work). Queues hold at most
two frames, so a live camera is never more than a couple of frames behind.

Stopping: SIGINT/SIGTERM (or the caller's ``stop`` event) reach every thread through one event. No thread ever
blocks without a timeout on a queue or a source, so the run ends within a fraction of a second in every state
(opening a camera, reconnecting, a read stuck in a driver, full queues), closing the video (it plays) and flushing
the events. Every resource (backend, stage resources, source, sinks) is closed by one ``ExitStack``, in reverse
order of opening, whatever happens.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecv.errors import EdgecvError
from edgecv.runtime.backends import create_backend
from edgecv.runtime.drift import DriftMonitor, reference_problem
from edgecv.runtime.mqtt_sink import SCHEMES as MQTT_SCHEMES
from edgecv.runtime.sinks import EventsSink, VideoSink, WindowSink
from edgecv.runtime.sources import open_source
from edgecv.runtime.stages import Stage, StageOptions, create_stage
from edgecv.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)
_END = object()
_POLL = 0.05  # seconds any thread waits before looking at the stop event again


@dataclass(frozen=True)
class PipelineSpec:
    model: str
    source: str
    threads: int | None = None
    backend: str | None = None
    # task options: None = not given (the task's default); given for another task's artifact = refused
    conf: float | None = None
    iou: float | None = None
    track: bool | None = None  # detectors: None = on for video and cameras, off for folders of images
    zones: str | None = None  # detectors: a zones/lines YAML (runtime/analytics.py)
    topk: int | None = None
    gallery: str | None = None  # face embedders: the enrolment gallery (SQLite) to match against
    face_detector: str | None = None  # haar | haar:FILE.xml | yunet:FILE.onnx | an edgecv detector artifact
    match_threshold: float | None = None  # None: the threshold calibrated at export (artifact metadata)
    event_cooldown_s: float = 5.0  # face events: one per person per this many seconds of stream time
    max_frames: int | None = None
    save: str | None = None
    events: str | None = None
    show: bool = False
    telemetry: str | None = None
    capture_drift: str | None = None
    drift: bool = True
    drift_checks: tuple[str, ...] = ("training", "site")  # see runtime/drift.py
    stats_every_s: float = 0.0
    open_timeout_s: float | None = 10.0  # live sources: fail when the first frame has not come by then
    give_up_after_s: float | None = None  # live sources: stop after this long without frames (None: keep trying)
    backend_options: tuple[tuple[str, Any], ...] = ()  # e.g. (("preferred_providers", (...)),) from a device profile
    device: str | None = None  # the device profile applied (apply_device), for the start line

    def stage_options(self) -> StageOptions:
        from edgecv.runtime.sources import is_still_images

        names = ("topk", "conf", "iou", "track", "zones", "gallery", "face_detector", "match_threshold")
        return StageOptions({k: getattr(self, k) for k in names}, str(self.model), self.event_cooldown_s,
                            is_still_images(self.source))


class _Stop:
    """One event for the whole run, set by SIGINT/SIGTERM (handlers installed only in the main thread) or by the
    caller. A second signal while shutting down raises KeyboardInterrupt: the user insists."""

    def __init__(self, event: threading.Event | None) -> None:
        self.event = event or threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        log.warning("%s: finishing the current frame and closing the outputs", signal.Signals(signum).name)
        self.event.set()

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def default_threads() -> int:
    """Inference threads when not given: all cores but one, which capture, preprocessing, postprocessing and
    the sinks run on (on 2 cores: 197 fps end to end with 1 inference thread vs 145 with 2, lite0 int8 ONNX)."""
    return max(1, (os.cpu_count() or 2) - 1)


def _put(q: queue.Queue, item: Any, halt: threading.Event) -> bool:
    """Put, waiting while the queue is full, unless the run stops (then False: the item is dropped)."""
    while True:
        try:
            q.put(item, timeout=_POLL)
            return True
        except queue.Full:
            if halt.is_set():
                return False


def _get(q: queue.Queue, upstream_alive: Callable[[], bool]) -> Any:
    """The next item, or _END once the upstream thread is gone and nothing is left."""
    while True:
        try:
            return q.get(timeout=_POLL)
        except queue.Empty:
            if not upstream_alive() and q.empty():
                return _END


class _ConsoleLimiter:
    """Source and drift events on the console too, at most one line per kind every ``every_s`` seconds."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s, self._last, self.suppressed = every_s, {}, 0

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        if kind not in ("drift", "drift_cleared", "source_lost", "reconnected", "site_baseline_reset"):
            return
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self.every_s:
            self.suppressed += 1
            return
        self._last[kind] = now
        detail = {k: v for k, v in event.items() if k not in ("event", "t")}
        log.warning("%s: %s", kind.replace("_", " "), ", ".join(f"{k}={v}" for k, v in detail.items()))


def _open_sinks(spec: PipelineSpec, fps: float, stack: ExitStack) -> tuple[list[Any], Any]:
    """The sinks, and the one that takes events (a JSON-lines file, or an MQTT broker for mqtt:// and mqtts://)."""
    sinks: list[Any] = []
    events = None
    if spec.show:
        sinks.append(stack.enter_context(WindowSink()))
    if spec.save:
        sinks.append(stack.enter_context(VideoSink(spec.save, fps)))
    if spec.events and spec.events.startswith(MQTT_SCHEMES):
        from edgecv.runtime.mqtt_sink import MqttSink

        events = stack.enter_context(MqttSink(spec.events))
        sinks.append(events)
    elif spec.events:
        events = stack.enter_context(EventsSink(spec.events))
        sinks.append(events)
    return sinks, events


def _drift_monitor(spec: PipelineSpec, meta) -> DriftMonitor | None:
    problem = reference_problem(meta.drift)
    if spec.capture_drift and problem:
        raise EdgecvError(f"{spec.model}: --capture-drift needs a drift reference, and {problem}")
    if not spec.drift:
        return None
    if problem:
        log.warning("drift monitoring off: %s", problem)
        return None
    try:
        return DriftMonitor(meta.drift, checks=spec.drift_checks, capture_dir=spec.capture_drift)
    except ValueError as exc:
        raise EdgecvError(f"--drift-checks: {exc}") from None


def _start_line(spec: PipelineSpec, backend, stage: Stage, threads: int) -> str:
    events = spec.events
    if events and events.startswith(MQTT_SCHEMES):
        from edgecv.runtime.mqtt_sink import parse_mqtt_uri

        events = parse_mqtt_uri(events).safe_uri  # never a secret on the console
    outputs = [f"{kind} {path}" for kind, path in (("video", spec.save), ("events", events)) if path]
    outputs += ["window"] if spec.show else []
    where = ", ".join(outputs) if outputs else "no --save/--events/--show: results are only summarised at the end"
    profile = f", device profile {spec.device}" if spec.device else ""
    line = (f"run {Path(spec.model).name} ({backend.meta.task}, {backend.meta.precision}) on {backend.name} "
            f"[{', '.join(backend.providers)}], {threads} inference thread(s){profile}; source {spec.source}; {where}")
    extra = stage.describe()
    return line + (f"; {extra}" if extra else "")


def run_pipeline(spec: PipelineSpec, stop: threading.Event | None = None) -> dict[str, Any]:
    tel = Telemetry()
    with _Stop(stop) as stopper, ExitStack() as stack:
        halt = stopper.event
        threads = spec.threads or default_threads()
        backend = stack.enter_context(create_backend(spec.model, name=spec.backend, threads=threads,
                                                     **dict(spec.backend_options)))
        stage = create_stage(backend, spec.stage_options(), stack)
        drift = _drift_monitor(spec, backend.meta)
        source = open_source(spec.source, give_up_after=spec.give_up_after_s, open_timeout=spec.open_timeout_s,
                             stop=halt)
        stack.callback(source.close)
        # outputs are opened last, so a bad option above leaves no empty files behind
        sinks, events = _open_sinks(spec, getattr(source, "fps", 30.0) or 30.0, stack)
        log.info("%s", _start_line(spec, backend, stage, threads))
        tel.start = time.perf_counter()
        try:
            _run_threads(spec, stage, source, sinks, events, drift, tel, halt)
        finally:
            tel.end = time.perf_counter()
    summary = tel.summary(source.stats)
    summary.update(model=str(spec.model), backend=backend.name, task=backend.meta.task, **stage.summary())
    if drift is not None:
        summary["drift"] = drift.summary()
    if hasattr(events, "summary"):
        summary["mqtt"] = events.summary()
    beside_events = spec.events and not spec.events.startswith(MQTT_SCHEMES)
    telemetry_path = spec.telemetry or (str(Path(spec.events).with_suffix(".telemetry.json")) if beside_events else None)
    if telemetry_path:
        tel.write(telemetry_path, source.stats,
                  extra={k: summary[k] for k in ("faces", "drift", "tracks", "zones", "mqtt") if k in summary})
    return summary


def _run_threads(spec: PipelineSpec, stage: Stage, source, sinks: list[Any], events: Any,
                 drift: DriftMonitor | None, tel: Telemetry, halt: threading.Event) -> None:
    q_in: queue.Queue = queue.Queue(maxsize=2)
    q_out: queue.Queue = queue.Queue(maxsize=2)
    errors: list[BaseException] = []
    infer_done = threading.Event()
    console = _ConsoleLimiter()

    def produce() -> None:
        try:
            it, n = iter(source), 0
            while not halt.is_set():
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None or halt.is_set():
                    break
                tel.add("capture_wait", (time.perf_counter() - t0) * 1e3)
                if not _put(q_in, stage.prepare(frame, tel), halt):
                    break
                n += 1
                if spec.max_frames and n >= spec.max_frames:
                    break
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
            halt.set()

    def emit(pending: list[dict[str, Any]]) -> None:
        new = []
        while source.stats.events:  # reconnects and losses, also while no frame comes (taken, so it stays small)
            new.append(source.stats.events.pop(0))
        for ev in new + pending:
            console(ev)
            if events is not None:
                events.event(ev)

    def consume() -> None:
        last_stats = time.monotonic()
        try:
            while True:
                try:
                    job = q_out.get(timeout=_POLL)
                except queue.Empty:
                    emit([])
                    if infer_done.is_set() and q_out.empty():
                        break
                    continue
                with tel.timed("postprocess"):
                    result, pending = stage.finish(job)
                t1 = time.perf_counter()
                if drift is not None:
                    pending += drift.observe(job.frame.bgr, stage.drift_confidence(job, result), job.frame.pts)
                for sink in sinks:
                    sink.write(job.frame, result)
                emit(pending)
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

    producer = threading.Thread(target=produce, name="capture+prepare", daemon=True)
    consumer = threading.Thread(target=consume, name="finish+sinks", daemon=True)
    producer.start()
    consumer.start()
    try:
        while (job := _get(q_in, producer.is_alive)) is not _END and not errors:
            with tel.timed("infer"):
                stage.infer(job)
            if not _put(q_out, job, halt):
                break
    except BaseException as exc:
        errors.append(exc)
        halt.set()
    finally:
        infer_done.set()
        consumer.join()
        producer.join(timeout=1.0)  # gone already, unless the run stopped: then it sees ``halt`` within _POLL
    if errors:
        raise errors[0]


def apply_device(spec: PipelineSpec, device: str) -> PipelineSpec:
    """The profile's threads, execution providers / XNNPACK and default camera, where the spec leaves them open."""
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
                               backend_options=tuple(options.items()), device=device)
