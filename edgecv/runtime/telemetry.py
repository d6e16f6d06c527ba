"""Per-stage latency (p50/p99), FPS and dropped frames for a pipeline run.

Memory stays flat however long the run: each stage keeps a count and a sum over the whole run (the mean) and its
last ``WINDOW`` latencies (the percentiles are over those). ``latency`` is a frame's age when its outputs are
written (capture to sinks). A run over several sources keeps one ``Telemetry`` per source, each adding to the run's
(``parent``); inference is timed once per backend call, on the run's, with the frames the call took (a batch).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

WINDOW = 10_000  # latencies kept per stage for the percentiles
STAGES = ("capture_wait", "face_detect", "preprocess", "infer", "postprocess", "sinks", "latency")  # face_detect: faces


class Telemetry:
    def __init__(self, parent: Telemetry | None = None) -> None:
        self.parent = parent
        self._ms: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=WINDOW))
        self._n: dict[str, int] = defaultdict(int)
        self._sum: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self.frames = 0
        self.last: float | None = None  # when the last frame was done (perf_counter)
        self.inferred = 0  # frames through the backend (a batched call counts each of its frames)
        self.batches: dict[int, int] = defaultdict(int)  # backend calls by batch size
        self.start = time.perf_counter()
        self.end: float | None = None

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self._ms[stage].append(ms)
            self._n[stage] += 1
            self._sum[stage] += ms
        if self.parent is not None:
            self.parent.add(stage, ms)

    def add_infer(self, ms: float, frames: int) -> None:
        """One backend call that took ``frames`` frames."""
        self.add("infer", ms)
        with self._lock:
            self.inferred += frames
            self.batches[frames] += 1

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - t0) * 1e3)

    def frame_done(self) -> None:
        with self._lock:
            self.frames += 1
            self.last = time.perf_counter()
        if self.parent is not None:
            self.parent.frame_done()

    def summary(self, source_stats=None) -> dict[str, Any]:
        wall = (self.end or time.perf_counter()) - self.start
        stages = {}
        for name in STAGES:
            with self._lock:
                values = list(self._ms.get(name, ()))
                n, total = self._n.get(name, 0), self._sum.get(name, 0.0)
            if values:
                stages[name] = {
                    "p50_ms": float(np.percentile(values, 50)),
                    "p99_ms": float(np.percentile(values, 99)),
                    "mean_ms": total / n,
                    "n": n,
                }
        out = {"frames": self.frames, "wall_s": wall, "fps": self.frames / wall if wall > 0 else 0.0, "stages": stages}
        if "infer" in stages and self.inferred:
            out["infer_only_fps"] = self.inferred / (self._sum["infer"] / 1e3)
        if source_stats is not None:
            out["source"] = {
                "read": source_stats.read,
                "dropped": source_stats.dropped,
                "corrupt": source_stats.corrupt,
                "reconnects": source_stats.reconnects,
            }
        return out

    def write(self, path: str | Path, source_stats=None, extra: dict[str, Any] | None = None) -> None:
        """The summary (plus ``extra`` sections: drift, faces) as JSON, replaced atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({**self.summary(source_stats), **(extra or {})}, indent=1, default=float))
        tmp.replace(path)


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"frames {s['frames']}  fps {s['fps']:.1f}  wall {s['wall_s']:.1f} s"
        + (f"  (inference alone: {s['infer_only_fps']:.1f} fps{_per_worker(s)})" if "infer_only_fps" in s else "")
    ]
    for name, v in s["stages"].items():
        lines.append(f"  {name:<13} p50 {v['p50_ms']:7.2f} ms  p99 {v['p99_ms']:7.2f} ms")
    if "source" in s:
        src = s["source"]
        lines.append(
            f"  source: read {src['read']}  dropped {src['dropped']}  corrupt {src['corrupt']}  reconnects {src['reconnects']}"
        )
    if "tracks" in s:
        lines.append(f"  tracks: {s['tracks']['confirmed']} confirmed, {s['tracks']['live']} live at the end")
    for name, counts in s.get("zones", {}).items():
        shown = "  ".join(f"{k} {sum(v.values()) if isinstance(v, dict) else v}" for k, v in counts.items())
        lines.append(f"  {name}: {shown}")
    if "mqtt" in s:
        m = s["mqtt"]
        lines.append(
            f"  mqtt {m['broker']}: published {m['published']}  dropped {m['dropped']}  reconnects "
            f"{m['reconnects']}  undelivered at exit {m['queued_at_end']}"
        )
    if "drift" in s:
        d = s["drift"]
        lines.append(f"  drift: {d['alarms']} alarm(s), drifting at the end: {', '.join(d['drifting']) or 'no'}")
    if "streams" in s:
        shown = ", ".join(f"{n} of {k} frame(s)" for k, n in s.get("batches", {}).items())
        lines.append(f"  inference calls: {shown or 'none'}")
        for name, st in s["streams"].items():
            lines.append(_stream_line(name, st))
    return "\n".join(lines)


def _per_worker(s: dict[str, Any]) -> str:
    workers = s.get("workers", 1)
    return f" a worker, {workers} workers x {s.get('threads')} thread(s)" if workers > 1 else ""


def _stream_line(name: str, st: dict[str, Any]) -> str:
    lat = st["stages"].get("latency")
    src = st["source"]
    line = (
        f"  {name}: frames {st['frames']}  fps {st['fps']:.1f}"
        + (f"  latency p50 {lat['p50_ms']:.1f} ms p99 {lat['p99_ms']:.1f} ms" if lat else "")
        + f"  read {src['read']} dropped {src['dropped']} corrupt {src['corrupt']} reconnects {src['reconnects']}"
    )
    if "tracks" in st:
        line += f"  tracks {st['tracks']['confirmed']}"
    if "drift" in st:
        line += f"  drift alarms {st['drift']['alarms']}"
    return line + (f"  FAILED: {st['error']}" if "error" in st else "")
