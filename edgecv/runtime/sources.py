"""Frame sources as URIs, in the spirit of jetson-inference: every source is an iterator of ``Frame``.

- ``0`` / ``/dev/video0``: V4L2 camera; ``csi://0``: Jetson CSI camera (``nvarguscamerasrc``, needs OpenCV with
  GStreamer); ``libcamera://0``: Raspberry Pi camera (GStreamer ``libcamerasrc``, or Picamera2 when installed);
  ``rtsp://``, ``http(s)://`` (MJPEG): network streams; a video file; an image folder or a glob.
- Live sources run a capture thread that keeps only the newest frame (a slow model never falls seconds
  behind the camera) and counts the frames it dropped; a lost camera or stream is reopened with backoff
  and reported as an event, never a crash. Files and folders yield every frame, in order.
- A live source that never delivers a frame within ``open_timeout`` seconds fails with one line naming the URI
  and what to check. Every source takes the pipeline's stop event: iteration ends within ~0.1 s of it being set,
  whatever the capture thread is doing (opening, backing off, blocked in a read), and ``close`` never waits long
  for a thread stuck inside a driver (it is a daemon and releases its capture when the call returns).
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgecv.errors import EdgecvError
from edgecv.runtime._opencv import quiet_opencv

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Frame:
    bgr: np.ndarray
    index: int  # position in the source (for live sources: frames captured, including dropped ones)
    t: float  # capture time (time.monotonic)
    name: str = ""  # file name for image sources
    pts: float = 0.0  # stream time in seconds: since the first frame (live), from the file's clock (video), or 1/image


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
    return (
        f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},height={height},"
        f"framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=1"
    )


def libcamera_pipeline(width: int = 1280, height: int = 720, fps: int = 30) -> str:
    return (
        f"libcamerasrc ! video/x-raw,width={width},height={height},framerate={fps}/1 ! videoconvert ! "
        "video/x-raw,format=BGR ! appsink drop=true max-buffers=1"
    )


def what_to_check(uri: str) -> str:
    """The usual reasons a live source of this kind does not open, for the one-line error."""
    if re.fullmatch(r"\d+", uri) or uri.startswith("/dev/video"):
        node = uri if uri.startswith("/dev/") else f"/dev/video{uri}"
        return (
            f"check that {node} exists (ls /dev/video*), that this user may open it (group 'video'), and that "
            "no other process holds the camera"
        )
    if uri.startswith(("csi://", "libcamera://")):
        return (
            "check the camera ribbon, that the camera service sees it (Jetson: nvargus-daemon; Pi: "
            "rpicam-hello), and that OpenCV was built with GStreamer"
        )
    return "check the address, port and credentials, and that the server is up and reachable from this device"


def capture_opener(uri: str, timeout_s: float = 10.0) -> Callable[[], cv2.VideoCapture]:
    """A function that opens the live source ``uri`` with OpenCV (called again to reconnect). Network streams get
    FFmpeg open and read timeouts, so no call blocks the capture thread for longer than ``timeout_s``."""
    if re.fullmatch(r"\d+", uri) or uri.startswith("/dev/video"):
        index = int(uri) if uri.isdigit() else int(uri.removeprefix("/dev/video"))
        return lambda: cv2.VideoCapture(index, cv2.CAP_V4L2)
    if uri.startswith(("csi://", "libcamera://")):
        if not _has_gstreamer():
            raise EdgecvError(
                f"{uri}: this OpenCV has no GStreamer (pip wheels do not); on a Jetson use the system "
                "OpenCV from JetPack (our Dockerfile.jetson), on a Pi `apt install python3-opencv` "
                "or `pip install picamera2` for libcamera://"
            )
        pipe = csi_pipeline(int(uri.split("//")[1] or 0)) if uri.startswith("csi://") else libcamera_pipeline()
        return lambda: cv2.VideoCapture(pipe, cv2.CAP_GSTREAMER)
    if uri.startswith(("rtsp://", "http://", "https://", "rtmp://", "udp://")):
        ms = int(max(timeout_s, 1.0) * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        return lambda: cv2.VideoCapture(uri, cv2.CAP_FFMPEG, params)
    raise EdgecvError(f"{uri}: not a live source URI")


class LiveSource:
    """Capture thread + newest-frame slot. ``open_capture`` is called again, with backoff, when reading fails.

    ``open_timeout``: seconds the first open may take before the source fails (a camera that was never there);
    ``give_up_after``: seconds without frames, once it has worked, before it fails (None: reconnect forever).
    """

    def __init__(
        self,
        uri: str,
        open_capture: Callable[[], cv2.VideoCapture],
        backoff: tuple[float, float] = (0.5, 8.0),
        give_up_after: float | None = None,
        open_timeout: float | None = 10.0,
        stop: threading.Event | None = None,
    ):
        self.uri, self._open, self.backoff, self.give_up_after = uri, open_capture, backoff, give_up_after
        self.open_timeout = open_timeout
        self.stats = SourceStats()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._stop = threading.Event()  # close(): this source only
        self._halt = stop or threading.Event()  # the pipeline's stop (SIGINT/SIGTERM)
        self._failed: str | None = None
        self._t0: float | None = None
        quiet_opencv()
        self._thread = threading.Thread(target=self._run, name=f"capture {uri}", daemon=True)
        self._thread.start()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self._halt.is_set()

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake within 50 ms of either stop event."""
        end = time.monotonic() + seconds
        while not self.stopping and (left := end - time.monotonic()) > 0:
            self._stop.wait(min(left, 0.05))

    def _event(self, kind: str, **info) -> None:
        ev = {"event": kind, "source": self.uri, "t": time.time(), **info}
        self.stats.events.append(ev)
        log.debug("%s: %s %s", self.uri, kind, info or "")  # the pipeline puts them on the console, rate-limited

    def _open_or_fail(self, started: float, lost_since: float | None):
        """One open attempt: the capture, or None (retry), setting ``_failed`` when it is time to give up."""
        try:
            cap = self._open()
        except Exception as exc:  # a driver or stream library error: retry like any failed open
            log.debug("%s: open failed: %s", self.uri, exc)
            cap = None
        if cap is not None and cap.isOpened():
            return cap
        now = time.monotonic()
        if lost_since is None and self.open_timeout is not None and now - started >= self.open_timeout:
            self._failed = f"{self.uri}: could not open it within {self.open_timeout:g} s; {what_to_check(self.uri)}"
        elif lost_since is not None and self.give_up_after is not None and now - lost_since >= self.give_up_after:
            self._failed = f"{self.uri}: no frames for {self.give_up_after:.0f} s; giving up"
        return None

    def _backoff_wait(self, delay: float, started: float, count: int, lost_since: float | None) -> float:
        """The backoff delay, cut so that the last attempt falls on the open or give-up deadline, not after it."""
        now = time.monotonic()
        if count == 0 and lost_since is None and self.open_timeout is not None:
            return max(0.0, min(delay, started + self.open_timeout - now))
        if lost_since is not None and self.give_up_after is not None:
            return max(0.0, min(delay, lost_since + self.give_up_after - now))
        return delay

    def _run(self) -> None:
        delay, lost_since, cap, count, started = self.backoff[0], None, None, 0, time.monotonic()
        while not self.stopping and self._failed is None:
            if cap is None:
                cap = self._open_or_fail(started, lost_since)
                if cap is None:
                    self._wait(self._backoff_wait(delay, started, count, lost_since))
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
                if self.stopping:
                    break
                if count == 0 and lost_since is None:  # opened but never delivered a frame: still opening
                    if self.open_timeout is not None and time.monotonic() - started >= self.open_timeout:
                        self._failed = (
                            f"{self.uri}: opened, but no frame within {self.open_timeout:g} s; {what_to_check(self.uri)}"
                        )
                    self._wait(self._backoff_wait(delay, started, count, lost_since))
                    delay = min(delay * 2, self.backoff[1])
                    continue
                lost_since = time.monotonic()
                self._event("source_lost")
                continue
            if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.size == 0:
                self.stats.corrupt += 1
                continue
            now = time.monotonic()
            self._t0 = now if self._t0 is None else self._t0
            with self._cond:
                if self._latest is not None:
                    self.stats.dropped += 1
                self._latest = Frame(bgr, count, now, pts=now - self._t0)
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
                while self._latest is None and self._thread.is_alive() and not self.stopping:
                    self._cond.wait(0.05)
                frame, self._latest = self._latest, None
            if frame is None:
                if self._failed and not self.stopping:
                    raise EdgecvError(self._failed)
                return
            yield frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)  # a thread inside a driver call is left to finish it (daemon)
        if self._thread.is_alive():
            log.debug("%s: capture thread still inside a read; it releases the capture when the call returns", self.uri)


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
            yield Frame(bgr, index, time.monotonic(), pts=index / self.fps)
            index += 1

    def close(self) -> None:
        self.cap.release()


class ImageFilesSource:
    """Images from a folder (sorted) or a glob; unreadable files are skipped and counted. A frame's name is its
    path below the folder, or below the glob's wildcard-free prefix (``data/*/*.jpg`` names ``circle/0000.jpg``,
    so images of one file name in different folders stay apart in the events)."""

    def __init__(self, paths: list[str], uri: str, base: str | None = None):
        if not paths:
            raise EdgecvError(f"{uri}: no images found")
        self.uri, self.paths, self.stats, self.fps = uri, paths, SourceStats(), 1.0
        self.base = base

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.paths):
            bgr = cv2.imread(p, cv2.IMREAD_COLOR)
            if bgr is None:
                self.stats.corrupt += 1
                log.warning("%s: unreadable image, skipped", p)
                continue
            self.stats.read += 1
            name = os.path.relpath(p, self.base) if self.base is not None else Path(p).name
            yield Frame(bgr, i, time.monotonic(), name, pts=float(i))

    def close(self) -> None:
        pass


def is_still_images(uri: str | int) -> bool:
    """A folder, glob or single image: unrelated stills, not a stream (nothing to track across them)."""
    uri = str(uri)
    path = Path(uri)
    return path.is_dir() or any(c in uri for c in "*?[") or path.suffix.lower() in IMAGE_SUFFIXES


def open_source(
    uri: str | int, give_up_after: float | None = None, open_timeout: float | None = 10.0, stop: threading.Event | None = None
):
    """The source a URI names (see the module docstring). ``stop``: the pipeline's stop event (live sources end
    their iteration when it is set); ``open_timeout``/``give_up_after``: see ``LiveSource``."""
    uri = str(uri)
    live = {"give_up_after": give_up_after, "open_timeout": open_timeout, "stop": stop}
    if uri.startswith("libcamera://") and not _has_gstreamer() and importlib.util.find_spec("picamera2"):
        return LiveSource(uri, _picamera2_opener(), **live)
    if re.fullmatch(r"\d+", uri) or uri.startswith(
        ("/dev/video", "csi://", "libcamera://", "rtsp://", "http://", "https://", "rtmp://", "udp://")
    ):
        return LiveSource(uri, capture_opener(uri, open_timeout or 10.0), **live)
    path = Path(uri)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return ImageFilesSource(files, uri, base=uri)
    if any(c in uri for c in "*?["):
        fixed = Path(*[part for part in itertools.takewhile(lambda q: not any(c in q for c in "*?["), path.parts)])
        files = sorted(p for p in glob.glob(uri) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        return ImageFilesSource(files, uri, base=str(fixed) if fixed.parts else ".")
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
