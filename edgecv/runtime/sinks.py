"""Sinks take ``write(frame, result)`` and ``close()`` (and are context managers); ``annotate`` draws a typed result
on a frame."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecv.errors import EdgecvError
from edgecv.results import Classification, Detections, Faces
from edgecv.runtime._opencv import opencv_silent

log = logging.getLogger(__name__)

_COLORS = [
    (56, 56, 255),
    (151, 157, 255),
    (31, 112, 255),
    (29, 178, 255),
    (49, 210, 207),
    (10, 249, 72),
    (23, 204, 146),
    (134, 219, 61),
    (52, 147, 26),
    (187, 212, 0),
    (168, 153, 44),
    (255, 194, 0),
]


def annotate(bgr: np.ndarray, result: Any) -> np.ndarray:
    """A copy of the frame with the result drawn on it."""
    out = bgr.copy()
    if isinstance(result, Classification):
        for i, (label, score) in enumerate(zip(result.labels, result.scores)):
            cv2.putText(out, f"{label} {score:.2f}", (8, 24 + 22 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3)
            cv2.putText(out, f"{label} {score:.2f}", (8, 24 + 22 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    elif isinstance(result, Detections):
        for i in range(len(result)):
            x1, y1, x2, y2 = (int(round(v)) for v in result.xyxy[i])
            tid = int(result.track_ids[i]) if result.track_ids is not None else None
            color = _COLORS[(tid if tid is not None else int(result.class_ids[i])) % len(_COLORS)]
            cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
            name = result.labels[i] if result.labels else str(int(result.class_ids[i]))
            text = f"#{tid} {name} {result.scores[i]:.2f}" if tid is not None else f"{name} {result.scores[i]:.2f}"
            cv2.putText(out, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1)
    elif isinstance(result, Faces):
        for i in range(len(result)):
            x1, y1, x2, y2 = (int(round(v)) for v in result.xyxy[i])
            known = result.names[i] is not None
            color = (60, 200, 60) if known else (40, 40, 230)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
            text = f"{result.names[i] if known else 'unknown'} {result.similarities[i]:.2f}"
            cv2.putText(out, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1)
    return out


class Trails:
    """Short trails behind tracked boxes: the last ``length`` centres of each track id, drawn as a polyline; a track
    unseen for ``forget`` frames is dropped (memory stays bounded). Where an id jumps farther than its box's size and
    twice its last step, per frame since it was last seen (the tracker put it back on its own object, or found it
    again after a hiding far from where it went), its trail starts again: no line across the frame from one object
    to another, while a small, fast object (a ball) keeps its trail."""

    def __init__(self, length: int = 30, forget: int = 60):
        self.length, self.forget = length, forget
        self._points: dict[int, deque] = {}
        self._seen: dict[int, int] = {}
        self._frame = 0

    def draw(self, out: np.ndarray, result: Any) -> np.ndarray:
        self._frame += 1
        if isinstance(result, Detections) and result.track_ids is not None:
            centres = (result.xyxy[:, :2] + result.xyxy[:, 2:]) / 2
            sizes = (result.xyxy[:, 2:] - result.xyxy[:, :2]).max(axis=1)
            for tid, c, size in zip(result.track_ids.tolist(), centres.tolist(), sizes.tolist()):
                trail = self._points.setdefault(tid, deque(maxlen=self.length))
                if len(trail) > 1:  # (one point: no step to judge by yet)
                    reach = (size + 2 * math.dist(trail[-2], trail[-1])) * (self._frame - self._seen[tid])
                    if math.dist(trail[-1], c) > reach:
                        trail.clear()
                trail.append((int(c[0]), int(c[1])))
                self._seen[tid] = self._frame
                pts = np.asarray(self._points[tid], np.int32)
                if len(pts) > 1:
                    cv2.polylines(out, [pts], False, _COLORS[tid % len(_COLORS)], 2)
        for tid in [t for t, f in self._seen.items() if self._frame - f > self.forget]:
            del self._points[tid], self._seen[tid]
        return out


def result_event(frame, result, tag: dict[str, Any] | None = None) -> dict[str, Any]:
    """A frame's ``result`` event (``tag``: the stream's name, in a run over several sources)."""
    return {
        "event": "result",
        **(tag or {}),
        "frame": frame.index,
        **({"name": frame.name} if frame.name else {}),
        **result.to_dict(),
    }


class _Sink:
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# by suffix: the codecs tried in order, best first. H.264 (avc1) plays everywhere but pip's OpenCV wheels do not
# encode it; VP8 in WebM plays in every browser and they do; MPEG-4 Part 2 (mp4v) plays in players, not browsers.
CODECS = {
    ".mp4": ("avc1", "mp4v"),
    ".m4v": ("avc1", "mp4v"),
    ".mov": ("avc1", "mp4v"),
    ".webm": ("VP80", "VP90"),
    ".avi": ("MJPG",),
    ".mkv": ("avc1", "VP80", "MJPG"),
}
BROWSER_PLAYABLE = {"avc1", "VP80", "VP90"}


class VideoSink(_Sink):
    """Annotated frames to a video file, with the best codec this OpenCV build has for the suffix (see ``CODECS``;
    the choice, and a fallback that browsers cannot play, are logged). ``close`` finalises the file so it plays even
    after Ctrl-C."""

    def __init__(self, path: str | Path, fps: float = 30.0):
        self.path, self.fps, self.writer, self.codec = Path(path), fps, None, None
        self.trails = Trails()
        if self.path.suffix.lower() not in CODECS:
            raise EdgecvError(f"{self.path}: --save takes {', '.join(CODECS)} (.webm or .mp4 for browsers)")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _open(self, size: tuple[int, int]) -> None:
        tried = CODECS[self.path.suffix.lower()]
        for codec in tried:
            with opencv_silent():  # a codec this build lacks is not an error: the next one is tried
                writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), self.fps, size)
            if writer.isOpened():
                self.writer, self.codec, self.size = writer, codec, size
                break
            writer.release()
        else:
            raise EdgecvError(f"{self.path}: this OpenCV cannot encode {'/'.join(tried)} (try a .webm or .avi name)")
        if self.codec not in BROWSER_PLAYABLE:
            log.info(
                "%s: %s codec (plays in video players; browsers need H.264 or VP8: this OpenCV has no H.264 "
                "encoder, so name the file .webm for VP8)",
                self.path.name,
                self.codec,
            )
        else:
            log.info("%s: %s codec", self.path.name, self.codec)

    def write(self, frame, result) -> None:
        img = self.trails.draw(annotate(frame.bgr, result), result)
        if self.writer is None:
            self._open((img.shape[1], img.shape[0]))
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size)
        self.writer.write(img)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class EventsSink(_Sink):
    """JSON lines: one ``detection``/``classification`` event per frame plus pipeline events (drift, reconnect)."""

    def __init__(self, path: str | Path, every: int = 1):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = self.path.open("w", buffering=1)
        self.every = every

    def write(self, frame, result) -> None:
        if frame.index % self.every == 0:
            self.event(result_event(frame, result))

    def event(self, data: dict) -> None:
        self.f.write(json.dumps({"t": round(time.time(), 3), **data}) + "\n")

    def close(self) -> None:
        if not self.f.closed:
            self.f.flush()
            self.f.close()


def gui_problem() -> str | None:
    """Why ``--show`` cannot open a window here (None: it can), decided before any frame is read."""
    if re.search(r"GUI:\s*NONE", cv2.getBuildInformation()):
        return (
            "this OpenCV has no GUI (opencv-python-headless, edgecv's default): on a desktop, "
            "`pip uninstall opencv-python-headless && pip install opencv-python`, or watch --save out.webm instead"
        )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set): run it in a desktop session, or use --save out.webm"
    return None


class WindowSink(_Sink):
    """An OpenCV window (``--show``); needs a display and an OpenCV with GUI support (checked up front)."""

    def __init__(self, title: str = "edgecv"):
        problem = gui_problem()
        if problem:
            raise EdgecvError(f"--show: {problem}")
        self.title, self.trails = title, Trails()

    def write(self, frame, result) -> None:
        cv2.imshow(self.title, self.trails.draw(annotate(frame.bgr, result), result))
        cv2.waitKey(1)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
