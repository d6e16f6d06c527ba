"""Does the drift monitor tell in-distribution from shifted input on a fixed camera?

Streams made from the run's own TEST images, 16:9 at 640x360 and 30 fps (each image stretched, as the device's
stretch-resize undoes it; jitter of a few pixels and sensor noise on every frame), go through the device's own
stage (``prepare_frame`` -> backend -> postprocess) and ``DriftMonitor`` frame by frame, exactly as ``edgecv run``
does minus its threads, with the stream's clock (30 fps):

- static: one test image held for ``--minutes`` (default 10);
- montage: 10 test images, 2 s each, cycling for ``--minutes``;
- montage-all: every test image once, 2 s each (a view the camera never showed before every 2 s);
- brightness: the static scene 2 min, then at half the light for 30 s, then back for 60 s (``--timeline``);
- domain: the static scene 2 min, then opencv-doc's vtest.avi (a street, for a shapes model) for 30 s, then back.

Prints the events of each stream, false alarms per hour on the no-drift streams (and before the change on the
others), and the delay of the alarm and of its ``drift_cleared``; for both checks (the default) and for the
training check alone (``--drift-checks training``), on the same frames. Targets: no alarm on static and montage;
an alarm within 10 s of each change, cleared after it.

    python benchmarks/drift.py [--run runs/sample] [--model RUN/export/model_int8.onnx] [--minutes 10]
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np

from edgecv.data.splits import Split
from edgecv.runtime.backends import create_backend
from edgecv.runtime.drift import DriftMonitor
from edgecv.runtime.sources import Frame
from edgecv.runtime.stages import StageOptions, create_stage
from edgecv.runtime.telemetry import Telemetry

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
FPS = 30
SIZE = (640, 360)


def held(image: np.ndarray, seconds: float, rng, gain: float = 1.0):
    """A camera held on ``image``: +-3 px jitter and sensor noise (sigma 2) on every frame."""
    base = cv2.resize(image, SIZE, interpolation=cv2.INTER_LINEAR).astype(np.float32) * gain
    noise = rng.normal(0, 2, (8, *base.shape)).astype(np.float32)  # a few noise fields, reused (speed)
    for i in range(int(seconds * FPS)):
        dx, dy = rng.integers(-3, 4, 2)
        frame = np.roll(base, (int(dy), int(dx)), axis=(0, 1)) + noise[i % len(noise)]
        yield np.clip(frame, 0, 255).astype(np.uint8)


def video(path: str, seconds: float):
    """``path``'s frames at 30 fps stream time (a 10 fps file: each frame 3 times), looped."""
    cap = cv2.VideoCapture(path)
    src_fps = cap.get(cv2.CAP_PROP_FPS) or FPS
    frames = []
    while (ok := cap.read())[0] and len(frames) < seconds * src_fps:
        frames.append(cv2.resize(ok[1], SIZE))
    repeat = max(1, round(FPS / src_fps))
    n = int(seconds * FPS)
    for i in range(n):
        yield frames[(i // repeat) % len(frames)]


def streams(
    test: list[np.ndarray], minutes: float, vtest: str, rng, timeline: tuple[float, float, float]
) -> dict[str, tuple[list, float | None, float | None]]:
    """name -> (segments, change at, back at): segments are frame generators played in order."""
    still = test[0]
    lead, change, back = timeline
    out = {
        "static": ([held(still, minutes * 60, rng)], None, None),
        "montage": ([held(test[k % 10], 2, rng) for k in range(int(minutes * 30))], None, None),
        "montage-all": ([held(im, 2, rng) for im in test], None, None),
        "brightness x0.5": (
            [held(still, lead, rng), held(still, change, rng, gain=0.5), held(still, back, rng)],
            lead,
            lead + change,
        ),
    }
    if Path(vtest).is_file():
        out[f"domain ({Path(vtest).name})"] = (
            [held(still, lead, rng), video(vtest, change), held(still, back, rng)],
            lead,
            lead + change,
        )
    else:
        print(f"{vtest}: not found (apt install opencv-doc); the domain stream is skipped")
    return out


def play(stage, monitors: list[DriftMonitor], segments) -> tuple[list[list[dict]], int, float]:
    """Every frame through the stage once, and through each monitor; each monitor's events."""
    tel, events, n = Telemetry(), [[] for _ in monitors], 0
    t0 = time.perf_counter()
    for segment in segments:
        for bgr in segment:
            frame = Frame(bgr, n, time.monotonic(), pts=n / FPS)
            job = stage.prepare(frame, tel)
            stage.infer(job)
            result, _ = stage.finish(job)
            confidence = stage.drift_confidence(job, result)
            for got, monitor in zip(events, monitors):
                got += monitor.observe(bgr, confidence, frame.pts)
            n += 1
    return events, n, time.perf_counter() - t0


def row(name: str, n: int, events: list[dict], change: float | None, back: float | None) -> str:
    minutes = n / FPS / 60
    alarms = [e for e in events if e["event"] == "drift"]
    if change is None:
        return f"{name:<44} {minutes:>7.1f} {len(alarms):>6} {len(alarms) / (minutes / 60):>8.1f} {'-':>11} {'-':>13}"
    early = [e for e in alarms if e["stream_s"] < change]
    late = [e for e in alarms if change <= e["stream_s"] < back + 10]
    cleared = [e for e in events if e["event"] == "drift_cleared" and e["stream_s"] >= back]
    first = f"{late[0]['stream_s'] - change:.1f} s" if late else "never"
    gone = f"{cleared[0]['stream_s'] - back:.1f} s" if cleared else ("-" if not late else "never")
    return f"{name:<44} {minutes:>7.1f} {len(alarms):>6} {len(early) / (change / 3600):>8.1f} {first:>11} {gone:>13}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/sample"))
    ap.add_argument("--model", type=Path, help="default: RUN/export/model_int8.onnx")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the static and montage streams")
    ap.add_argument("--vtest", default=VTEST)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--timeline",
        default="120,30,60",
        help="change streams: seconds before the change, of the change, and after it (LEAD,CHANGE,BACK)",
    )
    args = ap.parse_args()
    model = args.model or args.run / "export" / "model_int8.onnx"
    if not model.is_file():
        raise SystemExit(f"{model}: not found; run the README's first command (scripts/quickstart.sh) first")
    split = Split.load(args.run / "split.json")
    test = [cv2.imread(str(Path(split.root) / f)) for f in split.files["test"]]
    test = [t for t in test if t is not None]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(test))
    test = [test[i] for i in order]
    timeline = tuple(float(v) for v in args.timeline.split(","))
    rows = []
    with ExitStack() as stack:
        backend = stack.enter_context(create_backend(model, threads=1))
        stage = create_stage(backend, StageOptions({}, str(model)), stack)
        print(f"{model} ({backend.meta.task}, {backend.meta.precision}); {len(test)} test images; {FPS} fps, {SIZE[0]}x{SIZE[1]}")
        for name, (segments, change, back) in streams(test, args.minutes, args.vtest, rng, timeline).items():
            monitors = [DriftMonitor(backend.meta.drift), DriftMonitor(backend.meta.drift, checks=("training",))]
            events, n, wall = play(stage, monitors, segments)
            rows.append((name, n, events, change, back))
            shown = ", ".join(f"{e['event']}({e.get('check', '')}) at {e['stream_s']:.1f} s" for e in events[0]) or "none"
            print(f"  {name:<20} {n / FPS / 60:5.1f} min of stream in {wall:5.1f} s: events: {shown}")
    print()
    print(f"{'stream':<44} {'minutes':>7} {'alarms':>6} {'false/h':>8} {'alarm after':>11} {'cleared after':>13}")
    for label, k in (("", 0), (" [--drift-checks training]", 1)):
        for name, n, events, change, back in rows:
            print(row(name + label, n, events[k], change, back))


if __name__ == "__main__":
    main()
