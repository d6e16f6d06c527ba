"""Soak: `edgecv run` on an RTSP camera for ``--minutes`` while the camera's server is killed and restarted.

The camera: opencv-doc's vtest.avi (10 fps, looped) published by ``ffmpeg`` (H.264, ultrafast) to
``rtsp-server-perl`` (Debian's RTSP relay; both Debian packages), on 127.0.0.1. The relay speaks RTP over UDP only,
so the client is told ``OPENCV_FFMPEG_CAPTURE_OPTIONS=rtsp_transport;udp`` (OpenCV asks for TCP by default).
The soak's clock starts at the run's first frame (the first open may take up to 30 s on a loaded machine);
``--restarts`` times, evenly spread, the relay and its publisher are killed, left down ``--down`` seconds and
restarted. Every second the run's RSS and open file descriptors are sampled from /proc and its events file is
checked to be whole JSON lines. Should the last restart's reconnect still be pending when the time is up, the soak
waits for it up to 60 s more. At the end SIGINT stops the run, which must exit within 2 s.

Prints frames processed, reconnects and the time to each (from the run's own ``reconnected`` events), frames lost
(dropped by the newest-frame policy, and not received while the server was down), RSS growth after warm-up
(target < 10 MB) and file descriptors at the end vs after warm-up.

    python benchmarks/soak.py [--model runs/sample/export/model_int8.onnx] [--minutes 10] [--restarts 3] [--logs DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Camera:
    """rtsp-server-perl (clients on ``client_port``, publishers on ``source_port``) + ffmpeg publishing the video."""

    def __init__(self, video: str, log_dir: Path):
        self.video, self.log_dir = video, log_dir
        self.client_port, self.source_port = free_port(), free_port()
        self.uri = f"rtsp://127.0.0.1:{self.client_port}/live"
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        log = open(self.log_dir / "camera.log", "a")
        self.procs = [
            subprocess.Popen(
                [
                    "rtsp-server-perl",
                    "-c",
                    str(self.client_port),
                    "-s",
                    str(self.source_port),
                    "--client_listen_address",
                    "127.0.0.1",
                    "--source_listen_address",
                    "127.0.0.1",
                    "-l",
                    "1",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        ]
        deadline = time.time() + 10
        while time.time() < deadline and not _listening(self.source_port):
            time.sleep(0.1)
        self.procs.append(
            subprocess.Popen(
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
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-tune",
                    "zerolatency",
                    "-g",
                    "10",
                    "-f",
                    "rtsp",
                    f"rtsp://127.0.0.1:{self.source_port}/live",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        )

    def kill(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        self.procs = []


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def proc_sample(pid: int) -> tuple[float, int]:
    """(RSS in MB, open file descriptors) of process ``pid``."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def read_events(path: Path) -> tuple[list[dict], int]:
    """(the events that parse, the number of lines that do not), over the file's complete lines."""
    if not path.exists():
        return [], 0
    text = path.read_text()
    good, bad = [], 0
    for line in text[: text.rfind("\n") + 1].splitlines():
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            bad += 1
    return good, bad


def _reconnects(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "reconnected"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("runs/sample/export/model_int8.onnx"))
    ap.add_argument("--video", default=VTEST)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--down", type=float, default=5.0, help="seconds the server stays down at each restart")
    ap.add_argument(
        "--warmup", type=float, default=60.0, help="seconds after the first frame before the RSS / fd baseline is taken"
    )
    ap.add_argument("--logs", type=Path, help="a folder for the run's and the camera's logs (default: a new one in /tmp)")
    args = ap.parse_args()
    for tool in ("ffmpeg", "rtsp-server-perl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool}: not found (Debian: apt install ffmpeg rtsp-server-perl)")
    for path in (args.model, Path(args.video)):
        if not path.is_file():
            raise SystemExit(f"{path}: not found (the model: README command 1; the video: apt install opencv-doc)")
    tmp = args.logs or Path(tempfile.mkdtemp(prefix="edgecv-soak."))
    tmp.mkdir(parents=True, exist_ok=True)
    events, telemetry = tmp / "events.jsonl", tmp / "telemetry.json"
    camera = Camera(args.video, tmp)
    camera.start()
    time.sleep(1.0)
    env = {**os.environ, "OPENCV_FFMPEG_CAPTURE_OPTIONS": "rtsp_transport;udp"}
    # the first open waits for the publisher to reach the relay (a loaded machine can take seconds): what is
    # measured here is what happens after that
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgecv.cli",
            "run",
            str(args.model),
            "--source",
            camera.uri,
            "--events",
            str(events),
            "--telemetry",
            str(telemetry),
            "--threads",
            "1",
            "--open-timeout",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=open(tmp / "run.log", "w"),
        text=True,
        env=env,
    )
    duration = args.minutes * 60
    t0 = time.monotonic()
    samples: list[tuple[float, float, int]] = []
    downs: list[tuple[float, float]] = []
    bad_lines = 0
    first_frame: float | None = None
    restarts_at: list[float] = []
    end = 60.0  # until the first frame: the soak's clock starts there (a loaded machine may take its time)
    seen: list[dict] = []
    try:
        # after the soak's time, up to 60 s more for the last restart's reconnect
        while (now := time.monotonic() - t0) < end or (len(_reconnects(seen)) < len(downs) and now < end + 60):
            if run.poll() is not None:
                raise SystemExit(f"edgecv run exited early ({run.returncode}); see {tmp / 'run.log'}")
            if restarts_at and now >= restarts_at[0]:
                restarts_at.pop(0)
                camera.kill()
                down_at = time.monotonic() - t0
                time.sleep(args.down)
                camera.start()
                downs.append((down_at, time.monotonic() - t0))
            samples.append((now, *proc_sample(run.pid)))
            seen, bad_now = read_events(events)
            bad_lines = max(bad_lines, bad_now)
            if first_frame is None and seen:
                first_frame, end = now, now + duration
                restarts_at = [now + duration * (k + 1) / (args.restarts + 1) for k in range(args.restarts)]
            time.sleep(1.0)
        t_sig = time.monotonic()
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=30)
        stop_s = time.monotonic() - t_sig
    finally:
        if run.poll() is None:
            run.kill()
        camera.kill()
    kinds, bad = read_events(events)
    bad_lines = max(bad_lines, bad)
    good = len(kinds)
    reconnects = _reconnects(kinds)
    lost = [e for e in kinds if e["event"] == "source_lost"]
    tel = json.loads(telemetry.read_text())
    if first_frame is None:
        raise SystemExit(f"edgecv run processed no frame; see {tmp / 'run.log'}")
    base = [s for s in samples if s[0] >= first_frame + args.warmup] or samples
    rss0, fd0 = base[0][1], base[0][2]
    rss_end, fd_end = samples[-1][1], samples[-1][2]
    rss_max = max(s[1] for s in base)
    down_s = sum(up - down for down, up in downs)
    src = tel["source"]
    print(
        f"{args.model.name} on {camera.uri} ({Path(args.video).name}, 10 fps, looped), {args.minutes:g} min, "
        f"{len(downs)} server restart(s), {args.down:g} s down each"
    )
    print(
        f"  frames processed        {tel['frames']}  ({tel['fps']:.1f} fps; infer p50 {tel['stages']['infer']['p50_ms']:.2f} ms)"
    )
    print(
        f"  source losses           {len(lost)}   reconnects {len(reconnects)}: after "
        + ", ".join(f"{e['after_s']:.1f} s" for e in reconnects)
        + " (from loss to first frame)"
    )
    print(
        f"  frames lost             {src['dropped']} dropped by the newest-frame policy; ~{down_s * 10:.0f} not "
        f"received while the server was down ({down_s:.0f} s at 10 fps); {src['corrupt']} corrupt"
    )
    print(
        f"  RSS                     {rss0:.1f} MB after a {args.warmup:g} s warm-up (from the first frame) -> "
        f"{rss_end:.1f} MB at the end "
        f"(growth {rss_end - rss0:+.1f} MB, peak {rss_max:.1f} MB; target < 10 MB)"
    )
    print(f"  open file descriptors   {fd0} after warm-up -> {fd_end} at the end")
    print(f"  events file             {good} whole JSON lines, {bad_lines} broken (checked every second)")
    print(f"  SIGINT at the end       exit {run.returncode} after {stop_s:.2f} s")
    print(f"  (logs in {tmp})")
    failed = [
        what
        for what, bad in (
            (f"{len(downs) - len(reconnects)} restart(s) without a reconnect", len(reconnects) < len(downs)),
            (f"RSS grew {rss_end - rss0:+.1f} MB", rss_end - rss0 >= 10),
            (f"fds {fd0} -> {fd_end}", fd_end > fd0 + 2),
            (f"{bad_lines} broken event line(s)", bad_lines > 0),
            (f"exit code {run.returncode}", run.returncode != 0),
            (f"SIGINT took {stop_s:.2f} s", stop_s > 2.0),
        )
        if bad
    ]
    print("PASS" if not failed else "FAIL: " + "; ".join(failed))
    sys.stdout.flush()
    sys.exit(0 if not failed else 1)


if __name__ == "__main__":
    main()
