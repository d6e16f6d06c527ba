"""``edgecv run``: sources -> stages (preprocess, backend, postprocess) -> drift/telemetry -> sinks.

The pipeline only wires and owns lifetimes; the work is the stage's (``runtime/stages.py``) and the threads are
``runtime/streams.py``'s. With one source, three threads overlap consecutive frames: one reads and prepares frame
n+1 while the main thread runs inference on frame n and another finishes and writes frame n-1. With several
(``--source A --source B``, ``--sources FILE``), each has its own stage, drift monitor, telemetry and video, and one
model serves them all, batched across streams where the backend allows. Queues hold at most two frames a source, so
a live camera is never more than a couple of frames behind.

Stopping: SIGINT/SIGTERM (or the caller's ``stop`` event) reach every thread through one event. No thread ever
blocks without a timeout on a queue or a source, so the run ends within a fraction of a second in every state
(opening a camera, reconnecting, a read stuck in a driver, full queues), closing the video (it plays) and flushing
the events. Every resource (backend, stage resources, source, sinks) is closed by one ``ExitStack``, in reverse
order of opening, whatever happens.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecv.errors import EdgecvError
from edgecv.runtime.backends import create_backend
from edgecv.runtime.drift import DriftMonitor, reference_problem
from edgecv.runtime.inference import ThreadPlan, on_gpu, thread_plan, usable_cores, warm_up, worker_backends
from edgecv.runtime.mqtt_sink import SCHEMES as MQTT_SCHEMES
from edgecv.runtime.sinks import EventsSink, VideoSink, WindowSink
from edgecv.runtime.sources import open_source
from edgecv.runtime.stages import Stage, StageOptions, create_stage, stage_batchable
from edgecv.runtime.streams import RunLoop, Stream, TaggedEvents, file_safe, name_sources, safe_uri
from edgecv.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineSpec:
    model: str
    source: str | tuple[str, ...]  # one URI, or several (one stream each; ``NAME=URI`` names one)
    threads: int | None = None  # each inference worker's runtime threads (None: see runtime/inference.py)
    workers: int | None = None  # inference calls side by side (None: one a core on a CPU, one on a GPU)
    backend: str | None = None
    # task options: None = not given (the task's default); given for another task's artifact = refused
    conf: float | None = None
    iou: float | None = None
    track: bool | None = None  # detectors: None = on for video and cameras, off for folders of images
    zones: str | None = None  # detectors: a zones/lines YAML (runtime/analytics.py)
    topk: int | None = None
    gallery: str | None = None  # face embedders: the enrolment gallery (SQLite) to match against
    face_detector: str | None = None  # None: blazeface-back; blazeface | haar[:FILE.xml] | yunet:FILE.onnx | an artifact
    match_threshold: float | None = None  # None: the threshold calibrated at export (artifact metadata)
    event_cooldown_s: float = 5.0  # face events: one per person per this many seconds of stream time
    max_frames: int | None = None  # of each source
    batch: int | None = None  # several sources: frames an inference call takes (None: streams on a GPU, 1 on a CPU)
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

    def uris(self) -> tuple[str, ...]:
        return (str(self.source),) if isinstance(self.source, (str, int)) else tuple(map(str, self.source))

    def stage_options(self, uri: str | None = None) -> StageOptions:
        from edgecv.runtime.sources import is_still_images

        names = ("topk", "conf", "iou", "track", "zones", "gallery", "face_detector", "match_threshold")
        return StageOptions(
            {k: getattr(self, k) for k in names},
            str(self.model),
            self.event_cooldown_s,
            is_still_images(uri if uri is not None else self.uris()[0]),
        )


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
    """A lone inference worker's threads (a backend that serves one call at a time): all cores but one, which
    capture, preprocessing, postprocessing and the sinks run on (on 2 cores: 197 fps end to end with 1 inference
    thread vs 145 with 2, lite0 int8 ONNX)."""
    return max(1, usable_cores() - 1)


def _open_backends(spec: PipelineSpec, stack: ExitStack) -> tuple[list[Any], ThreadPlan]:
    """The backend of each inference worker, and the plan they follow (``runtime/inference.py``)."""

    def open_one(threads: int):
        return stack.enter_context(create_backend(spec.model, name=spec.backend, threads=threads, **dict(spec.backend_options)))

    plan = thread_plan(usable_cores(), spec.threads, spec.workers)
    backend = open_one(plan.threads)
    backends, got = worker_backends(backend, plan, stage_batchable(backend.meta.task))
    if got.workers < plan.workers and spec.threads is None and not on_gpu(backend) and default_threads() > got.threads:
        backend.close()  # one worker after all: it takes the cores but one
        backends, got = [open_one(default_threads())], ThreadPlan(1, default_threads(), got.why)
    for b in backends[1:]:
        if b is not backends[0]:
            stack.callback(b.close)
    return backends, got


class _ConsoleLimiter:
    """Source and drift events on the console too, at most one line per kind every ``every_s`` seconds."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s, self._last, self.suppressed = every_s, {}, 0

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        if kind not in ("drift", "drift_cleared", "source_lost", "reconnected", "site_baseline_reset"):
            return
        now, key = time.monotonic(), (kind, event.get("source"))  # per stream, with several
        if now - self._last.get(key, -1e9) < self.every_s:
            self.suppressed += 1
            return
        self._last[key] = now
        detail = {k: v for k, v in event.items() if k not in ("event", "t")}
        log.warning("%s: %s", kind.replace("_", " "), ", ".join(f"{k}={v}" for k, v in detail.items()))


def _open_events(spec: PipelineSpec, stack: ExitStack) -> Any:
    """The sink that takes events: a JSON-lines file, an MQTT broker for mqtt:// and mqtts://, or None."""
    if spec.events and spec.events.startswith(MQTT_SCHEMES):
        from edgecv.runtime.mqtt_sink import MqttSink

        return stack.enter_context(MqttSink(spec.events))
    return stack.enter_context(EventsSink(spec.events)) if spec.events else None


def per_stream_path(path: str, name: str | None) -> str:
    """``out.mp4`` for one stream; ``out-NAME.mp4`` for stream NAME of several."""
    if name is None:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{file_safe(name)}{p.suffix}"))


def _open_sinks(spec: PipelineSpec, fps: float, stack: ExitStack, name: str | None) -> list[Any]:
    """A stream's window and video (``name``: None when the run has one stream)."""
    sinks: list[Any] = []
    if spec.show:
        sinks.append(stack.enter_context(WindowSink(f"edgecv {name}" if name else "edgecv")))
    if spec.save:
        sinks.append(stack.enter_context(VideoSink(per_stream_path(spec.save, name), fps)))
    return sinks


def _drift_monitor(spec: PipelineSpec, meta, name: str | None = None, warn: bool = True) -> DriftMonitor | None:
    """``name``: the stream's, with several (its drift captures go to a folder of that name); ``warn``: say why
    drift monitoring is off (once a run)."""
    problem = reference_problem(meta.drift)
    if spec.capture_drift and problem:
        raise EdgecvError(f"{spec.model}: --capture-drift needs a drift reference, and {problem}")
    if not spec.drift:
        return None
    if problem:
        log.log(logging.WARNING if warn else logging.DEBUG, "drift monitoring off: %s", problem)
        return None
    capture = spec.capture_drift and (str(Path(spec.capture_drift) / file_safe(name)) if name else spec.capture_drift)
    try:
        return DriftMonitor(meta.drift, checks=spec.drift_checks, capture_dir=capture or None)
    except ValueError as exc:
        raise EdgecvError(f"--drift-checks: {exc}") from None


def _start_line(spec: PipelineSpec, backend, stage: Stage, plan: ThreadPlan, loop: RunLoop) -> str:
    events = spec.events
    if events and events.startswith(MQTT_SCHEMES):
        from edgecv.runtime.mqtt_sink import parse_mqtt_uri

        events = parse_mqtt_uri(events).safe_uri  # never a secret on the console
    outputs = [f"{kind} {path}" for kind, path in (("video", spec.save), ("events", events)) if path]
    outputs += ["window"] if spec.show else []
    where = ", ".join(outputs) if outputs else "no --save/--events/--show: results are only summarised at the end"
    profile = f", device profile {spec.device}" if spec.device else ""
    line = (
        f"run {Path(spec.model).name} ({backend.meta.task}, {backend.meta.precision}) on {backend.name} "
        f"[{', '.join(backend.providers)}], {plan.describe()}{profile}; {_sources_text(loop)}; {where}"
    )
    extra = stage.describe()
    return line + (f"; {extra}" if extra else "")


def _sources_text(loop: RunLoop) -> str:
    streams = loop.streams
    if len(streams) == 1:
        return f"source {streams[0].source.uri}"
    batch = f"batched across streams (up to {loop.batch_limit})" if loop.batch_limit > 1 else "one frame a call, in turn"
    return f"{len(streams)} sources ({', '.join(s.name for s in streams)}), inference {batch}"


def _open_streams(spec: PipelineSpec, backend, stack: ExitStack, halt: threading.Event, tel: Telemetry) -> list[Stream]:
    """Every source's stream: its stage, drift monitor and source; sinks come later (``_attach_sinks``)."""
    named = name_sources(spec.uris())
    multi = len(named) > 1
    streams = []
    for name, uri in named:
        stage = create_stage(backend, spec.stage_options(uri), stack)
        drift = _drift_monitor(spec, backend.meta, name if multi else None, warn=not streams)
        source = open_source(uri, give_up_after=spec.give_up_after_s, open_timeout=spec.open_timeout_s, stop=halt)
        stack.callback(source.close)
        streams.append(
            Stream(name, source, stage, Telemetry(tel) if multi else tel, [], None, drift, tag={"source": name} if multi else {})
        )
    return streams


def _attach_sinks(spec: PipelineSpec, streams: list[Stream], stack: ExitStack) -> Any:
    """Each stream's sinks, the events sink last (a refused --show or --save leaves no events file behind). It is one
    for all streams: with several, tagged with each stream's name and written under a lock."""
    for s in streams:
        s.sinks = _open_sinks(spec, getattr(s.source, "fps", 30.0) or 30.0, stack, s.name if s.tag else None)
    events = _open_events(spec, stack)
    if events is not None:
        lock = threading.Lock()
        for s in streams:
            s.events = TaggedEvents(events, s.tag, lock) if s.tag else events
            s.sinks.append(s.events)
    return events


def run_pipeline(spec: PipelineSpec, stop: threading.Event | None = None) -> dict[str, Any]:
    tel = Telemetry()
    with _Stop(stop) as stopper, ExitStack() as stack:
        halt = stopper.event
        backends, plan = _open_backends(spec, stack)
        warm_up(backends)
        backend = backends[0]
        streams = _open_streams(spec, backend, stack, halt, tel)
        events = _attach_sinks(spec, streams, stack)  # outputs last: a bad option above leaves no empty files
        loop = RunLoop(streams, backends, tel, halt, _ConsoleLimiter(), spec.max_frames, spec.stats_every_s, spec.batch)
        log.info("%s", _start_line(spec, backend, streams[0].stage, plan, loop))
        tel.start = time.perf_counter()
        for s in streams:
            s.tel.start = tel.start
        try:
            loop.run()
        finally:
            tel.end = time.perf_counter()
    summary = _summary(spec, backend, streams, tel, plan)
    if hasattr(events, "summary"):
        summary["mqtt"] = events.summary()
    beside_events = spec.events and not spec.events.startswith(MQTT_SCHEMES)
    telemetry_path = spec.telemetry or (str(Path(spec.events).with_suffix(".telemetry.json")) if beside_events else None)
    if telemetry_path:
        keys = ("faces", "drift", "tracks", "zones", "mqtt", "batches", "workers", "threads", "streams", "failed")
        tel.write(
            telemetry_path,
            streams[0].source.stats if len(streams) == 1 else _total_stats(streams),
            extra={k: summary[k] for k in keys if k in summary},
        )
    return summary


def _total_stats(streams: list[Stream]):
    from edgecv.runtime.sources import SourceStats

    return SourceStats(*(sum(getattr(s.source.stats, k) for s in streams) for k in ("read", "dropped", "corrupt", "reconnects")))


def _stream_summary(s: Stream) -> dict[str, Any]:
    out = s.tel.summary(s.source.stats)
    out.update(s.stage.summary())
    if s.drift is not None:
        out["drift"] = s.drift.summary()
    if s.error is not None:
        out["error"] = str(s.error)
    return out


def _summary(spec: PipelineSpec, backend, streams: list[Stream], tel: Telemetry, plan: ThreadPlan) -> dict[str, Any]:
    """One stream: its figures at the top level; several: the totals, and each stream's under ``streams``."""
    batches = {str(k): v for k, v in sorted(tel.batches.items())}
    head = {
        "model": str(spec.model),
        "backend": backend.name,
        "task": backend.meta.task,
        "workers": plan.workers,
        "threads": plan.threads,
    }
    if len(streams) == 1:
        return {**_stream_summary(streams[0]), **head, "batches": batches}
    for s in streams:
        s.tel.end = s.tel.last or tel.end  # a stream's rate over its own time: one that ended early is not diluted
    summary = {
        **tel.summary(_total_stats(streams)),
        **head,
        "batches": batches,
        "streams": {s.name: {"uri": safe_uri(s.source.uri), **_stream_summary(s)} for s in streams},
    }
    failed = [s.name for s in streams if s.error is not None]
    if failed:
        summary["failed"] = failed
    return summary


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
    return dataclasses.replace(
        spec,
        threads=spec.threads or profile.run_threads(),
        source=spec.source or profile.runtime.camera,
        backend_options=tuple(options.items()),
        device=device,
    )
