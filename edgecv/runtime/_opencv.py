"""OpenCV's own console output, kept off the user's screen where edgecv reports the same thing itself."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import cv2


def quiet_opencv() -> None:
    """OpenCV and its FFmpeg log a line per failed open attempt ("can't open camera by index", "Connection
    refused", an encoder that is not there); edgecv reports the failure itself, once, so those lines are silenced
    (EDGECV_OPENCV_LOG=1 keeps them, to debug a stream or a codec)."""
    if not os.environ.get("EDGECV_OPENCV_LOG"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read by OpenCV at each FFmpeg open


@contextlib.contextmanager
def opencv_silent() -> Iterator[None]:
    """No OpenCV output at all inside (probing for a codec that may be missing is not an error). OpenCV's FFmpeg
    writer also prints straight to the stderr file descriptor ("tag 'VP80' is not supported ... fallback"), past
    its logger, so fd 2 points at /dev/null for the (millisecond) call: keep the block to the one OpenCV call."""
    quiet_opencv()
    if os.environ.get("EDGECV_OPENCV_LOG"):
        yield
        return
    from edgecv._quiet import fd2_silenced

    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with fd2_silenced():
            yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


quiet_opencv()  # on import: OpenCV reads OPENCV_FFMPEG_LOGLEVEL when its FFmpeg backend first opens anything
