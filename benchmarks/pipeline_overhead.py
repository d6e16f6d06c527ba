"""End-to-end `edgecv run` FPS as a share of the backend's pure-inference FPS on the same frames.

Pure inference: every frame of the video decoded and preprocessed up front, then only ``backend.infer``
timed. Pipeline: ``run_pipeline`` over the same video file (decode, preprocess, infer, postprocess, drift,
JSON-lines events; and a second row that also encodes the annotated video), measured in the same run, in
``--rounds`` alternating rounds (pure, pipeline, pipeline + video, ...); each row prints its median FPS, so a burst
of load on a shared machine moves one round, not the ratio.
Target: pipeline / pure >= 0.95 (BENCHMARKS.md: Ultralytics' classifier reaches 0.34 here).

    python benchmarks/pipeline_overhead.py [--video /usr/share/doc/opencv-doc/examples/data/vtest.avi]
        [--model ARTIFACT]   (default: EfficientNet-Lite0 ImageNet, exported to int8 ONNX at 224 px) [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from edgecv.runtime.backends import create_backend
from edgecv.runtime.pipeline import PipelineSpec, default_threads, run_pipeline
from edgecv.runtime.preprocess import prepare_frame

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"


def default_model(folder: Path, size: int) -> Path:
    """EfficientNet-Lite0 with its offline ImageNet weights, as an int8 ONNX calibrated on real photos."""
    import dataclasses

    from edgecv.artifact import ArtifactMeta
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
        task="classify", labels=[f"imagenet_{i}" for i in range(1000)], input_size=(size, size), mean=spec.mean, std=spec.std
    )
    images = photo_crops(size)
    cal = Calibration(images, tuple(map(str, range(len(images)))), "photos")
    meta = dataclasses.replace(meta, drift=drift_reference(model, meta, [im[..., ::-1] for im in images]))
    fp32 = torch2onnx(model, ConvertSpec(folder / "lite0_fp32.onnx", meta))
    return onnx_int8(fp32, ConvertSpec(folder / "lite0_int8.onnx", meta, "int8", cal))


def pure_inference_fps(model: Path, video: str, threads: int | None, max_frames: int | None) -> tuple[float, int]:
    backend = create_backend(model, threads=threads)
    cap = cv2.VideoCapture(video)
    inputs = []
    while (max_frames is None or len(inputs) < max_frames) and (ok_frame := cap.read())[0]:
        inputs.append(prepare_frame(ok_frame[1], backend.meta, "BGR")[0][None])
    cap.release()
    for x in inputs[:5]:
        backend.infer(x)
    t = time.perf_counter()
    for x in inputs:
        backend.infer(x)
    return len(inputs) / (time.perf_counter() - t), len(inputs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=VTEST)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--size", type=int, default=224, help="input size of the default model")
    ap.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="inference threads for both measurements (default: edgecv run's, all cores but one)",
    )
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not Path(args.video).is_file():
        raise SystemExit(f"{args.video}: not found (Debian: apt install opencv-doc, or pass --video)")
    names = ("pure inference (pre-decoded frames)", "edgecv run --events", "edgecv run --events --save")
    fps: dict[str, list[float]] = {name: [] for name in names}
    frames: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp), args.size)
        for _ in range(args.rounds):
            rate, frames[names[0]] = pure_inference_fps(model, args.video, args.threads, args.max_frames)
            fps[names[0]].append(rate)
            for name, extra in zip(names[1:], ({}, {"save": f"{tmp}/out.mp4"})):
                s = run_pipeline(
                    PipelineSpec(
                        model=str(model),
                        source=args.video,
                        threads=args.threads,
                        max_frames=args.max_frames,
                        events=f"{tmp}/events.jsonl",
                        **extra,
                    )
                )
                fps[name].append(s["fps"])
                frames[name] = s["frames"]
    pure = statistics.median(fps[names[0]])
    print(
        f"{Path(str(model)).name} on {Path(args.video).name}, {args.threads} inference thread(s), "
        f"median of {args.rounds} round(s)"
    )
    print(f"{'':<38} {'frames':>6} {'fps':>8} {'/ pure':>7}  fps per round")
    for name in names:
        median = statistics.median(fps[name])
        rounds = " ".join(f"{v:.0f}" for v in fps[name])
        print(f"{name:<38} {frames[name]:>6} {median:>8.1f} {median / pure:>7.2f}  {rounds}")


if __name__ == "__main__":
    main()
