"""Sinks take ``write(frame, result)`` and ``close()``; ``annotate`` draws a typed result on a frame."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecv.errors import EdgecvError
from edgecv.results import Classification, Detections, Faces

_COLORS = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
           (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0)]


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
            color = _COLORS[int(result.class_ids[i]) % len(_COLORS)]
            cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
            name = result.labels[i] if result.labels else str(int(result.class_ids[i]))
            cv2.putText(out, f"{name} {result.scores[i]:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        color, 1)
    elif isinstance(result, Faces):
        for i in range(len(result)):
            x1, y1, x2, y2 = (int(round(v)) for v in result.xyxy[i])
            known = result.names[i] is not None
            color = (60, 200, 60) if known else (40, 40, 230)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
            text = f"{result.names[i] if known else 'unknown'} {result.similarities[i]:.2f}"
            cv2.putText(out, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1)
    return out


class VideoSink:
    """Annotated frames to a video file (mp4v); ``close`` finalises it so it plays even after Ctrl-C."""

    def __init__(self, path: str | Path, fps: float = 30.0):
        self.path, self.fps, self.writer = Path(path), fps, None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame, result) -> None:
        img = annotate(frame.bgr, result)
        if self.writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"))
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (img.shape[1], img.shape[0]))
            if not self.writer.isOpened():
                raise EdgecvError(f"{self.path}: OpenCV cannot write this video (try a .mp4 or .avi name)")
            self.size = (img.shape[1], img.shape[0])
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size)
        self.writer.write(img)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class EventsSink:
    """JSON lines: one ``detection``/``classification`` event per frame plus pipeline events (drift, reconnect)."""

    def __init__(self, path: str | Path, every: int = 1):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = self.path.open("w", buffering=1)
        self.every = every

    def write(self, frame, result) -> None:
        if frame.index % self.every == 0:
            self.event({"event": "result", "frame": frame.index, **({"name": frame.name} if frame.name else {}),
                        **result.to_dict()})

    def event(self, data: dict) -> None:
        self.f.write(json.dumps({"t": round(time.time(), 3), **data}) + "\n")

    def close(self) -> None:
        if not self.f.closed:
            self.f.flush()
            self.f.close()


class WindowSink:
    """An OpenCV window (``--show``); needs a display and an OpenCV with GUI support."""

    def __init__(self, title: str = "edgecv"):
        self.title = title

    def write(self, frame, result) -> None:
        try:
            cv2.imshow(self.title, annotate(frame.bgr, result))
            cv2.waitKey(1)
        except cv2.error as exc:
            raise EdgecvError("--show needs a display and an OpenCV with GUI support (pip's opencv-python, not "
                              f"-headless): {str(exc).splitlines()[-1]}") from None

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
