"""Real stream servers on 127.0.0.1 for the runtime's fault tests, and a running `edgecv run` to poke at.

ffmpeg (Debian package) serves an MJPEG stream over HTTP (``-listen 1``); the tests kill, stop (SIGSTOP: the
client is left blocked in a read) and restart it. In CI the package is installed by scripts/test.sh, so a missing
ffmpeg fails there instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

requires_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None and not os.environ.get("CI"), reason="ffmpeg is not installed (scripts/test.sh installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """A TCP socket on 127.0.0.1:``port`` in LISTEN state (from /proc/net/tcp, without connecting to it)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            return True
    return False


class MjpegServer:
    """``ffmpeg -re -stream_loop -1 -i VIDEO -f mpjpeg -listen 1 http://127.0.0.1:PORT/stream.mjpg``."""

    def __init__(self, video: str | Path, port: int | None = None):
        self.video, self.port = str(video), port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "MjpegServer":
        self.proc = subprocess.Popen(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
                self.video,
                "-f",
                "mpjpeg",
                "-q:v",
                "6",
                "-listen",
                "1",
                self.uri,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline and not listening(self.port):  # (a probe connection would be its one client)
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> "MjpegServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.kill()


class EdgecvRun:
    """`python -m edgecv.cli run ...` in the background; its stderr is collected line by line."""

    def __init__(self, *args: str, env: dict | None = None):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgecv.cli", "run", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader take the last lines
                if any(text in line for line in self.lines):
                    return
                raise AssertionError(f"edgecv run exited ({self.proc.returncode}) before {text!r}:\n{self.stderr[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} within {timeout} s:\n{self.stderr[-3000:]}")

    def signal_and_time(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> float:
        """Send ``sig``; the seconds until the process has exited."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return time.monotonic() - t0

    def finish(self, timeout: float = 60.0) -> tuple[int, str, float]:
        """Wait for the exit: (return code, stdout, seconds since start)."""
        self.proc.wait(timeout=timeout)
        out = self.proc.stdout.read()
        self._reader.join(timeout=5)
        return self.proc.returncode, out, time.monotonic() - self.started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
