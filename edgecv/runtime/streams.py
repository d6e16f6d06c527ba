"""The threads of ``edgecv run``: one capture+prepare thread and one finish+sinks thread per source, and the
inference workers all of them share (``runtime/inference.py``: one a core on a CPU, one on a GPU).

Each source reads and prepares its frames on its own thread (so a slow or lost camera holds up only itself) and
has at most ``QUEUE`` prepared frames waiting for inference (latest-frame policy upstream: a live source keeps only
its newest frame). A free inference worker takes the oldest waiting frame of each stream and runs them frame by
frame, or as one batch (``batch_size``): on a GPU, and when asked for, where the artifact takes a dynamic batch
(``Backend.max_batch``) and the stages allow it. Several workers infer consecutive frames of a stream side by side;
its finish thread puts them back in order (``seq``) before its stage (tracker, zones, face names), drift monitor,
video and events see them. The events of all streams go to the one events sink, tagged with the source's name.

A source that fails (a camera that never opens, a stream given up on) ends that stream only; the run ends when every
source has ended, and fails when every source failed. An error in inference, postprocessing or a sink stops the run.
OpenCV, onnxruntime and LiteRT release the GIL while they work, so the threads overlap on the cores.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgecv.runtime.drift import DriftMonitor
from edgecv.runtime.inference import batch_size, infer_jobs
from edgecv.runtime.stages import FrameJob, Stage
from edgecv.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)
_END = object()
_POLL = 0.05  # seconds any thread waits before looking at the stop event again
QUEUE = 2  # prepared frames a source may have waiting for inference


_NAMED = re.compile(r"([A-Za-z][\w-]{0,31})=(.+)")  # NAME=URI (a URI's own "=" comes after its "://" or a "/")


def safe_uri(uri: str) -> str:
    """The URI without a user name and password (rtsp://user:pass@host/... -> rtsp://host/...)."""
    parts = urlsplit(uri)
    if parts.scheme and "@" in parts.netloc:
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    return uri


def file_safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "stream"


def name_sources(uris: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(name, URI) of each source. ``NAME=URI`` names it; otherwise a file's or folder's name, a camera's index or a
    stream's URI without its credentials; a name seen before gets ``#2``, ``#3``."""
    named, seen = [], {}
    for uri in uris:
        m = None if Path(uri).exists() else _NAMED.fullmatch(uri)
        if m:
            name, uri = m.groups()
        elif "://" in uri:
            name = safe_uri(uri)
        else:
            name = Path(uri).name or uri
        seen[name] = seen.get(name, 0) + 1
        named.append((name if seen[name] == 1 else f"{name}#{seen[name]}", uri))
    return named


def read_sources(path: str | Path) -> list[str]:
    """A sources file: one URI (or NAME=URI) a line; blank lines and lines starting with # are skipped."""
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@dataclass(eq=False)
class Stream:
    """One source and what is its own: the stage (tracker, zones, face names), drift monitor, telemetry, sinks."""

    name: str
    source: Any
    stage: Stage
    tel: Telemetry
    sinks: list[Any]
    events: Any  # where this stream's events go (None: nowhere)
    drift: DriftMonitor | None = None
    tag: dict[str, Any] = field(default_factory=dict)  # {"source": name} on every event when the run has several
    error: BaseException | None = None
    slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(QUEUE))
    out: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=QUEUE))

    def emit(self, pending: list[dict[str, Any]], console: Callable[[dict[str, Any]], None]) -> None:
        """The source's own events (reconnects, losses: taken, so the list stays small) and ``pending``."""
        new = []
        while self.source.stats.events:
            new.append(self.source.stats.events.pop(0))
        for ev in new + pending:
            ev = {**ev, **self.tag}
            console(ev)
            if self.events is not None:
                self.events.event(ev)


class TaggedEvents:
    """One events sink shared by several streams: each stream's events and results carry its name, and writes from
    the streams' threads are serialised."""

    def __init__(self, sink: Any, tag: dict[str, Any], lock: threading.Lock):
        self.sink, self.tag, self.lock = sink, tag, lock

    def write(self, frame, result) -> None:
        from edgecv.runtime.sinks import result_event

        every = getattr(self.sink, "every", 1)
        if frame.index % every == 0:
            self.event(result_event(frame, result, self.tag))

    def event(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.sink.event({**data, **self.tag})


def _put(q: queue.Queue, item: Any, halt: threading.Event) -> bool:
    """Put, waiting while the queue is full, unless the run stops (then False: the item is dropped)."""
    while True:
        try:
            q.put(item, timeout=_POLL)
            return True
        except queue.Full:
            if halt.is_set():
                return False


def _acquire(slots: threading.Semaphore, halt: threading.Event) -> bool:
    while not slots.acquire(timeout=_POLL):
        if halt.is_set():
            return False
    return True


@dataclass
class RunLoop:
    """The threads over ``streams`` (see the module docstring); ``run`` returns when all have ended. ``backends``:
    one a worker (the same object more than once where it may be called from several threads)."""

    streams: list[Stream]
    backends: list[Any]
    tel: Telemetry  # the run's (each stream's adds to it)
    halt: threading.Event
    console: Callable[[dict[str, Any]], None]
    max_frames: int | None = None  # per stream
    stats_every_s: float = 0.0
    batch: int | None = None  # frames a call (None: batch_size's default)
    errors: list[BaseException] = field(default_factory=list)  # run-wide: they stop every stream

    def __post_init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()  # (stream, job), in arrival order
        self._pending: list[tuple[Stream, FrameJob]] = []  # taken off the queue, not yet given to a worker
        self._taking = threading.Lock()  # one worker at a time takes jobs
        self._producing = len(self.streams)  # capture threads still running; the last one out queues _END
        self._producing_lock = threading.Lock()
        self._ended = False  # _END taken: every source has ended (set and read under ``_taking``)
        batchable = all(s.stage.batchable for s in self.streams)
        self.batch_limit = batch_size(self.backends[0], len(self.streams), self.batch) if batchable else 1

    def _fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.halt.set()

    def _produce(self, s: Stream) -> None:
        try:
            it, n = iter(s.source), 0
            while not self.halt.is_set():
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None or self.halt.is_set():
                    break
                s.tel.add("capture_wait", (time.perf_counter() - t0) * 1e3)
                job = s.stage.prepare(frame, s.tel)
                job.seq = n
                if not _acquire(s.slots, self.halt):
                    break
                self._queue.put((s, job))
                n += 1
                if self.max_frames and n >= self.max_frames:
                    break
        except BaseException as exc:  # this stream ends; the others go on (run() raises when all have failed)
            s.error = exc
            if len(self.streams) > 1:
                log.error("%s: %s; the other streams go on", s.name, exc)
                s.emit([{"event": "source_failed", "t": time.time(), "error": str(exc)}], self.console)
        finally:
            with self._producing_lock:
                self._producing -= 1
                last = self._producing == 0
            if last:  # after every job of every stream: the workers end as soon as they reach it, not a poll later
                self._queue.put(_END)

    def _consume(self, s: Stream) -> None:
        """Finish the stream's frames in the order they were read (workers may complete them out of order)."""
        waiting: dict[int, FrameJob] = {}
        next_seq = 0
        try:
            while True:
                try:
                    job = s.out.get(timeout=_POLL)
                except queue.Empty:
                    s.emit([], self.console)  # the source's own events (a reconnect) while no frame comes
                    continue
                if job is _END:  # run() queues it once every worker is done: nothing can follow
                    break
                waiting[job.seq] = job
                while next_seq in waiting:
                    self._finish(s, waiting.pop(next_seq))
                    next_seq += 1
        except BaseException as exc:
            self._fail(exc)

    def _finish(self, s: Stream, job: FrameJob) -> None:
        with s.tel.timed("postprocess"):
            result, pending = s.stage.finish(job)
        t1 = time.perf_counter()
        if s.drift is not None:
            pending += s.drift.observe(job.frame.bgr, s.stage.drift_confidence(job, result), job.frame.pts)
        for sink in s.sinks:
            sink.write(job.frame, result)
        s.emit(pending, self.console)
        s.tel.add("sinks", (time.perf_counter() - t1) * 1e3)
        s.tel.add("latency", (time.monotonic() - job.frame.t) * 1e3)
        s.tel.frame_done()

    def _take(self) -> list[tuple[Stream, FrameJob]] | None:
        """The oldest waiting job of each stream that has one (at least one job, at most ``batch_limit``), or None
        once every source has ended. One frame a stream a call: a stream's next frame waits for the next call rather
        than make the batch (and every stream's latency) longer."""
        while True:
            try:
                while True:
                    self._receive(self._queue.get_nowait())
            except queue.Empty:
                pass
            if self._pending:
                break
            if self._ended:
                return None
            self._receive(self._queue.get())  # blocks: the last capture thread to end always queues _END
        jobs: list[tuple[Stream, FrameJob]] = []
        for item in self._pending:
            if len(jobs) < self.batch_limit and all(item[0] is not s for s, _ in jobs):
                jobs.append(item)
        for item in jobs:
            self._pending.remove(item)
            item[0].slots.release()
        return jobs

    def _receive(self, item: Any) -> None:
        """One item off the shared queue: a job waits in ``_pending``; _END marks every source ended."""
        if item is _END:
            self._ended = True
        else:
            self._pending.append(item)

    def _infer(self, backend: Any) -> None:
        """One worker: take jobs, infer them on ``backend``, hand each to its stream's finish thread."""
        try:
            while not self.errors:
                with self._taking:
                    jobs = self._take()
                if jobs is None:
                    return
                infer_jobs(backend, jobs, self.tel)
                if not all(_put(s.out, job, self.halt) for s, job in jobs):
                    return
        except BaseException as exc:
            self._fail(exc)

    def _log_stats(self) -> None:
        st = self.tel.summary()
        log.info(
            "frames %d  fps %.1f  infer p50 %.2f ms", st["frames"], st["fps"], st["stages"].get("infer", {}).get("p50_ms", 0.0)
        )

    def run(self) -> None:
        producers = [
            threading.Thread(target=self._produce, args=(s,), name=f"capture+prepare {s.name}", daemon=True) for s in self.streams
        ]
        consumers = [
            threading.Thread(target=self._consume, args=(s,), name=f"finish+sinks {s.name}", daemon=True) for s in self.streams
        ]
        workers = [
            threading.Thread(target=self._infer, args=(b,), name=f"infer {k}", daemon=True) for k, b in enumerate(self.backends)
        ]
        for t in producers + consumers + workers:
            t.start()
        last_stats = time.monotonic()
        try:  # the main thread watches (and takes Ctrl-C, which only it receives)
            while live := [t for t in workers if t.is_alive()]:
                live[0].join(timeout=_POLL)  # returns as soon as it ends (Ctrl-C still reaches this thread)
                if self.stats_every_s and time.monotonic() - last_stats >= self.stats_every_s:
                    last_stats = time.monotonic()
                    self._log_stats()
        except BaseException as exc:
            self._fail(exc)
        finally:
            for t in workers:
                t.join()  # each ends at _END, which the capture threads queue when they end (halt ends them)
            for s, t in zip(self.streams, consumers):  # a finish thread ends at _END, queued after its last frame
                while t.is_alive():
                    try:
                        s.out.put(_END, timeout=_POLL)  # as soon as it has room (a finish thread behind drains it)
                        break
                    except queue.Full:  # it is behind: room comes as it finishes frames
                        pass
                t.join()
            for t in producers:
                t.join(timeout=1.0)  # gone already, unless the run stopped: then it sees ``halt`` within _POLL
        if self.errors:
            raise self.errors[0]
        failed = [s.error for s in self.streams if s.error is not None]
        if failed and len(failed) == len(self.streams):
            raise failed[0]
