"""`edgecv run`'s end-to-end FPS against the compute-bound limit of this machine, for a classifier and a detector.

The limit: cores / the CPU time one frame costs when each step runs alone, one after another on one thread: decode
(the pipeline's own video source), preprocess, inference (one runtime thread), postprocess (with the detector's
tracker), drift and the events sink. CPU time (``process_time``: every thread of the process), not wall time, so a
step that uses helper threads (FFmpeg's decoder) is charged for all of them. A run that kept every core busy with
nothing but that work would reach the limit; e2e / limit is the share of it ``edgecv run`` achieves with its
defaults (``--events``, drift on). For comparison, the same run with one inference worker (``--workers 1``: the
policy before, cores - 1 runtime threads for one call at a time). Rounds alternate (the costs, e2e, e2e with one
worker); each figure is the median over rounds and the ratio the median of each round's own ratio (the range beside
it), so a burst of load on a shared machine moves one round, not the ratio.
Where ``ultralytics`` is importable (AGPL: never an edgecv dependency; install it in a separate venv to compare),
each round also times its ``predict`` loop with its defaults on the same frames: YOLO11n at the detector's size and
YOLO11n-cls at the classifier's, built from its YAML files (random weights: no download; speed only) and run as its
own ONNX export, in the same runtime. Where it is not, that row is left out and said so.
Targets (issue 19): e2e >= 0.9 of the limit for the classifier and the detector, and >= 1.1x Ultralytics' e2e.

    python benchmarks/pipeline_overhead.py [--video /usr/share/doc/opencv-doc/examples/data/vtest.avi]
        [--classifier ART] [--detector ART] [--max-frames 300] [--rounds 3]
    (default artifacts: EfficientNet-Lite0 ImageNet as int8 ONNX at 224 px; the detect recipe's network at 320 px
    as fp32 ONNX, head untrained: speed only)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import cv2

from edgecv.artifact import read_meta
from edgecv.runtime.backends import create_backend
from edgecv.runtime.drift import DriftMonitor, reference_problem
from edgecv.runtime.inference import usable_cores
from edgecv.runtime.pipeline import PipelineSpec, default_threads, run_pipeline
from edgecv.runtime.sinks import EventsSink
from edgecv.runtime.sources import open_source
from edgecv.runtime.stages import create_stage
from edgecv.runtime.telemetry import Telemetry
from edgecv.tools.roofline import artifact_macs

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
STEPS = ("decode", "preprocess", "infer", "postprocess", "drift", "sinks")


def default_model(folder: Path, size: int) -> Path:
    """EfficientNet-Lite0 with its offline ImageNet weights, as an int8 ONNX calibrated on real photos."""
    import dataclasses

    from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
    from edgecv.data.samples import photo_crops
    from edgecv.export.calibration import Calibration
    from edgecv.export.onnx_int8 import onnx_int8
    from edgecv.export.run import drift_reference
    from edgecv.export.spec import ConvertSpec
    from edgecv.export.torch2onnx import torch2onnx
    from edgecv.models import get_spec
    from edgecv.models.weights import load_imagenet_model

    spec = get_spec("efficientnet_lite0")
    model = load_imagenet_model(spec)[0].eval()
    meta = ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=[f"imagenet_{i}" for i in range(1000)],
        input_size=(size, size),
        mean=spec.mean,
        std=spec.std,
    )
    images = photo_crops(size)
    cal = Calibration(images, tuple(map(str, range(len(images)))), "photos")
    meta = dataclasses.replace(meta, drift=drift_reference(model, meta, [im[..., ::-1] for im in images]))
    fp32 = torch2onnx(model, ConvertSpec(folder / "lite0_fp32.onnx", meta))
    return onnx_int8(fp32, ConvertSpec(folder / "lite0_int8.onnx", meta, "int8", cal))


def default_detector(folder: Path, size: int = 320) -> Path:
    """The detect recipe's network at ``size`` px as fp32 ONNX; ImageNet backbone, head untrained (speed only)."""
    import yaml

    from edgecv.export.spec import ConvertSpec
    from edgecv.export.torch2onnx import torch2onnx
    from edgecv.models import get_spec
    from edgecv.models.loading import build_detector, detector_meta
    from edgecv.models.run_meta import DetectorMeta

    recipe = yaml.safe_load((Path(__file__).resolve().parents[1] / "recipes" / "detect_efficientnet_lite0.yaml").read_text())
    m = recipe["model"]
    classes = ["circle", "square", "triangle", "star", "cross"]
    spec = get_spec(m["backbone"])
    meta = DetectorMeta(
        task="detect",
        classes=classes,
        backbone=m["backbone"],
        input_size=size,
        mean=spec.mean,
        std=spec.std,
        strides=m["strides"],
        channels=m["channels"],
        head_convs=m["head_convs"],
    )
    model = build_detector(meta, pretrained="imagenet").eval()
    return torch2onnx(model, ConvertSpec(folder / "detector_fp32.onnx", detector_meta(model, classes, spec.mean, spec.std)))


def serial_costs(model: Path, video: str, frames: int | None, tmp: str) -> tuple[dict[str, float], int]:
    """CPU ms a frame of each step, the steps run one after another on this thread (OpenCV's own threads: 1)."""
    spec = PipelineSpec(model=str(model), source=video)
    total, n, before = dict.fromkeys(STEPS, 0.0), 0, cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ExitStack() as stack:
            backend = stack.enter_context(create_backend(model, threads=1))
            stage = create_stage(backend, spec.stage_options(video), stack)
            meta = backend.meta
            drift = None if reference_problem(meta.drift) else DriftMonitor(meta.drift, checks=spec.drift_checks)
            sink = stack.enter_context(EventsSink(f"{tmp}/serial.jsonl"))
            source = open_source(video)
            stack.callback(source.close)
            frames_in, tel = iter(source), Telemetry()
            warm_up = stage.prepare(next(frames_in), tel)  # a session's first calls plan its memory: not a frame's cost
            for _ in range(3):
                stage.infer(warm_up)
            while frames is None or n < frames:
                t = [time.process_time()]
                frame = next(frames_in, None)
                if frame is None:
                    break
                t.append(time.process_time())
                job = stage.prepare(frame, tel)
                t.append(time.process_time())
                stage.infer(job)
                t.append(time.process_time())
                result, _ = stage.finish(job)
                t.append(time.process_time())
                if drift is not None:
                    drift.observe(frame.bgr, stage.drift_confidence(job, result), frame.pts)
                t.append(time.process_time())
                sink.write(frame, result)
                t.append(time.process_time())
                for k, step in enumerate(STEPS):
                    total[step] += t[k + 1] - t[k]
                n += 1
    finally:
        cv2.setNumThreads(before)
    return {step: v / n * 1e3 for step, v in total.items()}, n


def ultralytics_model(kind: str, size: int, tmp: str) -> Path | None:
    """Ultralytics' own ONNX export of YOLO11n (detector) or YOLO11n-cls (classifier) at ``size`` px, with its export
    defaults; None where ultralytics is not importable. It runs in a child process, as its predict loop does: importing
    ultralytics changes process-wide settings (OpenCV's thread count among them) that would change edgecv's figures."""
    if importlib.util.find_spec("ultralytics") is None:
        return None
    folder = Path(tmp, f"ultralytics-{kind}")
    folder.mkdir()
    return Path(_peer("export", kind, size, folder))


def ultralytics_e2e(model: Path, kind: str, size: int, video: str, frames: int | None) -> float:
    return float(_peer("predict", model, kind, size, video, frames or 0))


def _peer(*args) -> str:
    cmd = [sys.executable, __file__, "--peer", *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"Ultralytics {args[0]} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def peer_main(args: list[str]) -> None:
    """In the child: ``export KIND SIZE FOLDER`` prints the ONNX's path; ``predict ONNX KIND SIZE VIDEO FRAMES`` prints
    the FPS of its ``predict(stream=True)`` loop with its defaults, from its first result to its last (loading and
    warm-up left out, as ``edgecv run``'s figure leaves them out)."""
    from ultralytics import YOLO

    if args[0] == "export":
        kind, size, folder = args[1], int(args[2]), args[3]
        os.chdir(folder)
        print(Path(folder, YOLO("yolo11n.yaml" if kind == "detector" else "yolo11n-cls.yaml").export(format="onnx", imgsz=size)))
        return
    model, kind, size, video, frames = args[1], args[2], int(args[3]), args[4], int(args[5])
    net, n, start = YOLO(model, task="detect" if kind == "detector" else "classify"), 0, 0.0
    for _ in net.predict(video, imgsz=size, stream=True, verbose=False):
        n += 1
        if n == 1:
            start = time.perf_counter()
        if n == frames:
            break
    print((n - 1) / (time.perf_counter() - start))


def e2e(model: Path, video: str, frames: int | None, tmp: str, **plan) -> dict:
    return run_pipeline(PipelineSpec(model=str(model), source=video, max_frames=frames, events=f"{tmp}/events.jsonl", **plan))


def measure(model: Path, video: str, frames: int | None, rounds: int, tmp: str, peer: tuple | None = None) -> dict:
    """Each round: the serial costs, ``edgecv run``, ``--workers 1`` and, with ``peer`` (its ONNX, kind, size),
    Ultralytics' predict, back to back."""
    cores = usable_cores()
    out: dict = {"costs": [], "limit": [], "e2e": [], "one": [], "ratio": [], "ratio_one": [], "peer": [], "vs_peer": []}
    for _ in range(rounds):
        costs, n = serial_costs(model, video, frames, tmp)
        limit = cores / (sum(costs.values()) / 1e3)
        run, one = e2e(model, video, frames, tmp), e2e(model, video, frames, tmp, workers=1)
        out["costs"].append(costs)
        out["limit"].append(limit)
        out["e2e"].append(run["fps"])
        out["one"].append(one["fps"])
        out["ratio"].append(run["fps"] / limit)
        out["ratio_one"].append(one["fps"] / limit)
        if peer is not None:
            out["peer"].append(ultralytics_e2e(*peer, video, frames))
            out["vs_peer"].append(run["fps"] / out["peer"][-1])
        out.update(frames=n, plan=(run["workers"], run["threads"]), task=run["task"])
    return out


def report(model: Path, video: str, r: dict, rounds: int, peer: tuple | None = None) -> None:
    med = statistics.median
    costs = {s: med(c[s] for c in r["costs"]) for s in STEPS}
    cores = usable_cores()
    head = f"{Path(model).name} ({r['task']}) on {Path(video).name}, {r['frames']} frames, {cores} cores"
    print(f"{head}, median of {rounds} round(s)")
    steps = "  ".join(f"{s} {v:.2f}" for s, v in costs.items())
    print(f"  CPU ms a frame, each step alone: {steps}  = {sum(costs.values()):.2f}")
    workers, threads = r["plan"]
    rows = (
        (f"compute-bound limit ({cores} cores / the sum)", r["limit"], None),
        (f"edgecv run --events ({workers} workers x {threads} thread)", r["e2e"], r["ratio"]),
        (f"edgecv run --events --workers 1 ({default_threads()} thread)", r["one"], r["ratio_one"]),
    )
    print(f"  {'':<50} {'fps':>7} {'/ limit':>8}  range")
    for name, fps, ratio in rows:
        share = f"{med(ratio):>8.2f}  {min(ratio):.2f}-{max(ratio):.2f}" if ratio else ""
        print(f"  {name:<50} {med(fps):>7.1f} {share}")
    verdict = "met" if med(r["ratio"]) >= 0.9 else "NOT met"
    print(f"  target e2e >= 0.9 of the limit: {verdict}")
    if peer is None:
        print("  Ultralytics: not importable here, its row not measured (run this from a venv that has it: README, Benchmarks)")
        return
    onnx, kind, size = peer
    macs = (artifact_macs(model) or 0) / 1e6, (artifact_macs(onnx) or 0) / 1e6
    name = f"Ultralytics predict, {'YOLO11n' if kind == 'detector' else 'YOLO11n-cls'} {size} px ONNX"
    print(f"  {name:<50} {med(r['peer']):>7.1f}")  # its own model's limit is not measured: no ratio
    vs, verdict = r["vs_peer"], "met" if med(r["vs_peer"]) >= 1.1 else "NOT met"
    print(f"  edgecv / Ultralytics e2e: {med(vs):.2f} ({min(vs):.2f}-{max(vs):.2f}); MACs {macs[0]:.0f} M vs {macs[1]:.0f} M")
    print(f"  target edgecv e2e >= 1.1x Ultralytics': {verdict}")


def main() -> None:
    if sys.argv[1:2] == ["--peer"]:
        return peer_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=VTEST)
    ap.add_argument("--classifier", type=Path, help="a classifier artifact (default: Lite0 int8 ONNX, 224 px)")
    ap.add_argument("--detector", type=Path, help="a detector artifact (default: the detect recipe's network, 320 px)")
    ap.add_argument("--only", choices=("classifier", "detector"), help="measure one of the two")
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not Path(args.video).is_file():
        raise SystemExit(f"{args.video}: not found (Debian: apt install opencv-doc, or pass --video)")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("classifier", "detector"):
            if args.only not in (None, kind):
                continue
            build = (lambda d: default_model(d, 224)) if kind == "classifier" else default_detector
            model = getattr(args, kind) or build(Path(tmp))
            size = max(read_meta(model).input_size)
            onnx = ultralytics_model(kind, size, tmp)
            peer = None if onnx is None else (onnx, kind, size)
            report(model, args.video, measure(model, args.video, args.max_frames, args.rounds, tmp, peer), args.rounds, peer)


if __name__ == "__main__":
    main()
