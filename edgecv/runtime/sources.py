"""Frame sources as URIs, in the spirit of jetson-inference: every source is an iterator of ``Frame``.

- ``0`` / ``/dev/video0``: V4L2 camera; ``csi://0``: Jetson CSI camera (``nvarguscamerasrc``, needs OpenCV with
  GStreamer); ``libcamera://0``: Raspberry Pi camera (GStreamer ``libcamerasrc``, or Picamera2 when installed);
  ``rtsp://``, ``http(s)://`` (MJPEG): network streams; a video file; an image folder or a glob.
- Live sources run a capture thread that keeps only the newest frame (a slow model never falls seconds
  behind the camera) and counts the frames it dropped; a lost camera or stream is reopened with backoff
  and reported as an event, never a crash. Files and folders yield every frame, in order.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgecv.errors import EdgecvError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Frame:
    bgr: np.ndarray
    index: int  # position in the source (for live sources: frames captured, including dropped ones)
    t: float  # capture time (time.monotonic)
    name: str = ""  # file name for image sources


@dataclass
class SourceStats:
    read: int = 0
    dropped: int = 0  # live: frames overwritten before the pipeline took them
    corrupt: int = 0  # frames or files that could not be decoded, skipped
    reconnects: int = 0
    events: list[dict] = field(default_factory=list)


def _has_gstreamer() -> bool:
    return bool(re.search(r"GStreamer:\s+YES", cv2.getBuildInformation()))


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: int = 30) -> str:
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},height={height},"
            f"framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
            "appsink drop=true max-buffers=1")


def libcamera_pipeline(width: int = 1280, height: int = 720, fps: int = 30) -> str:
    return (f"libcamerasrc ! video/x-raw,width={width},height={height},framerate={fps}/1 ! videoconvert ! "
            "video/x-raw,format=BGR ! appsink drop=true max-buffers=1")


def capture_opener(uri: str) -> Callable[[], cv2.VideoCapture]:
    """A function that opens the live source ``uri`` with OpenCV (called again to reconnect)."""
    if re.fullmatch(r"\d+", uri) or uri.startswith("/dev/video"):
        index = int(uri) if uri.isdigit() else int(uri.removeprefix("/dev/video"))
        return lambda: cv2.VideoCapture(index, cv2.CAP_V4L2)
    if uri.startswith(("csi://", "libcamera://")):
        if not _has_gstreamer():
            raise EdgecvError(f"{uri}: this OpenCV has no GStreamer (pip wheels do not); on a Jetson use the system "
                              "OpenCV from JetPack (our Dockerfile.jetson), on a Pi `apt install python3-opencv` "
                              "or `pip install picamera2` for libcamera://")
        pipe = csi_pipeline(int(uri.split("//")[1] or 0)) if uri.startswith("csi://") else libcamera_pipeline()
        return lambda: cv2.VideoCapture(pipe, cv2.CAP_GSTREAMER)
    if uri.startswith(("rtsp://", "http://", "https://", "rtmp://", "udp://")):
        return lambda: cv2.VideoCapture(uri, cv2.CAP_FFMPEG)
    raise EdgecvError(f"{uri}: not a live source URI")


class LiveSource:
    """Capture thread + newest-frame slot. ``open_capture`` is called again, with backoff, when reading fails."""

    def __init__(self, uri: str, open_capture: Callable[[], cv2.VideoCapture], backoff: tuple[float, float] = (0.5, 8.0),
                 give_up_after: float | None = None):
        self.uri, self._open, self.backoff, self.give_up_after = uri, open_capture, backoff, give_up_after
        self.stats = SourceStats()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._failed: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"capture {uri}", daemon=True)
        self._thread.start()

    def _event(self, kind: str, **info) -> None:
        ev = {"event": kind, "source": self.uri, "t": time.time(), **info}
        self.stats.events.append(ev)
        log.warning("%s: %s %s", self.uri, kind, info or "")

    def _run(self) -> None:
        delay, lost_since, cap, count = self.backoff[0], None, None, 0
        while not self._stop.is_set():
            if cap is None:
                try:
                    cap = self._open()
                except Exception as exc:  # a driver or stream library error: retry like any failed open
                    log.debug("%s: open failed: %s", self.uri, exc)
                    cap = None
                if cap is None or not cap.isOpened():
                    cap = None
                    lost_since = lost_since or time.monotonic()
                    if self.give_up_after is not None and time.monotonic() - lost_since > self.give_up_after:
                        self._failed = f"{self.uri}: no frames for {self.give_up_after:.0f} s; giving up"
                        break
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.backoff[1])
                    continue
                if lost_since is not None:
                    self.stats.reconnects += 1
                    self._event("reconnected", after_s=round(time.monotonic() - lost_since, 2))
                delay, lost_since = self.backoff[0], None
            ok, bgr = cap.read()
            if not ok or bgr is None:
                cap.release()
                cap = None
                lost_since = time.monotonic()
                self._event("source_lost")
                continue
            if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.size == 0:
                self.stats.corrupt += 1
                continue
            with self._cond:
                if self._latest is not None:
                    self.stats.dropped += 1
                self._latest = Frame(bgr, count, time.monotonic())
                count += 1
                self.stats.read += 1
                self._cond.notify()
        if cap is not None:
            cap.release()
        with self._cond:
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._latest is None and self._thread.is_alive() and not self._stop.is_set():
                    self._cond.wait(0.1)
                frame, self._latest = self._latest, None
            if frame is None:
                if self._failed:
                    raise EdgecvError(self._failed)
                return
            yield frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class VideoFileSource:
    """Every frame of a video file, in order; unreadable frames are skipped and counted."""

    def __init__(self, path: str):
        self.uri, self.stats = path, SourceStats()
        self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            raise EdgecvError(f"{path}: OpenCV cannot open this video")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0
        self._frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def __iter__(self) -> Iterator[Frame]:
        index, misses = 0, 0
        while True:
            ok, bgr = self.cap.read()
            if not ok:
                # a corrupt frame mid-file reads as a failure; the end of the file does too
                if self._frames and index + misses < self._frames - 1 and misses < 25:
                    misses += 1
                    self.stats.corrupt += 1
                    continue
                return
            self.stats.read += 1
            yield Frame(bgr, index, time.monotonic())
            index += 1

    def close(self) -> None:
        self.cap.release()


class ImageFilesSource:
    """Images from a folder (sorted) or a glob; unreadable files are skipped and counted."""

    def __init__(self, paths: list[str], uri: str):
        if not paths:
            raise EdgecvError(f"{uri}: no images found")
        self.uri, self.paths, self.stats, self.fps = uri, paths, SourceStats(), 1.0

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.paths):
            bgr = cv2.imread(p, cv2.IMREAD_COLOR)
            if bgr is None:
                self.stats.corrupt += 1
                log.warning("%s: unreadable image, skipped", p)
                continue
            self.stats.read += 1
            yield Frame(bgr, i, time.monotonic(), Path(p).name)

    def close(self) -> None:
        pass


def open_source(uri: str | int, give_up_after: float | None = None):
    """The source a URI names (see the module docstring)."""
    uri = str(uri)
    if uri.startswith("libcamera://") and not _has_gstreamer() and importlib.util.find_spec("picamera2"):
        return LiveSource(uri, _picamera2_opener(), give_up_after=give_up_after)
    if re.fullmatch(r"\d+", uri) or uri.startswith(("/dev/video", "csi://", "libcamera://", "rtsp://", "http://",
                                                     "https://", "rtmp://", "udp://")):
        return LiveSource(uri, capture_opener(uri), give_up_after=give_up_after)
    path = Path(uri)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return ImageFilesSource(files, uri)
    if any(c in uri for c in "*?["):
        return ImageFilesSource(sorted(p for p in glob.glob(uri) if Path(p).suffix.lower() in IMAGE_SUFFIXES), uri)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageFilesSource([str(path)], uri)
        return VideoFileSource(str(path))
    raise EdgecvError(f"{uri}: no such file, folder or camera URI")


def _picamera2_opener() -> Callable[[], object]:
    def open_picamera():
        from picamera2 import Picamera2

        class _Cap:  # the two methods LiveSource uses, over Picamera2
            def __init__(self) -> None:
                self.cam = Picamera2()
                # picamera2 "RGB888" arrays are BGR in memory: what OpenCV expects
                self.cam.configure(self.cam.create_video_configuration(main={"format": "RGB888"}))
                self.cam.start()

            def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
                return True

            def read(self):
                return True, self.cam.capture_array()

            def release(self) -> None:
                self.cam.stop()

        return _Cap()

    return open_picamera
