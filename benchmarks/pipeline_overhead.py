"""End-to-end `edgecv run` FPS as a share of the backend's pure-inference FPS on the same frames.

Pure inference: every frame of the video decoded and preprocessed up front, then only ``backend.infer``
timed. Pipeline: ``run_pipeline`` over the same video file (decode, preprocess, infer, postprocess, drift,
JSON-lines events; and a second row that also encodes the annotated video), measured in the same run.
Target: pipeline / pure >= 0.95 (BENCHMARKS.md: Ultralytics' classifier reaches 0.34 here).

    python benchmarks/pipeline_overhead.py [--video /usr/share/doc/opencv-doc/examples/data/vtest.avi]
        [--model ARTIFACT]   (default: EfficientNet-Lite0 ImageNet, exported to int8 ONNX at 224 px)
"""

from __future__ import annotations

import argparse
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
    from edgecv.export.calibration import Calibration
    from edgecv.export.onnx_int8 import onnx_int8
    from edgecv.export.run import drift_reference
    from edgecv.export.spec import ConvertSpec
    from edgecv.export.torch2onnx import torch2onnx
    from edgecv.models import get_spec
    from edgecv.models.weights import load_imagenet_model

    from edgecv.data.samples import photo_crops

    spec = get_spec("efficientnet_lite0")
    model = load_imagenet_model(spec)[0].eval()
    meta = ArtifactMeta(task="classify", labels=[f"imagenet_{i}" for i in range(1000)], input_size=(size, size),
                        mean=spec.mean, std=spec.std)
    images = photo_crops(size)
    cal = Calibration(images, tuple(map(str, range(len(images)))), "photos")
    meta = dataclasses.replace(meta, drift=drift_reference(model, meta, cal))
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
    ap.add_argument("--threads", type=int, default=default_threads(),
                    help="inference threads for both measurements (default: edgecv run's, all cores but one)")
    ap.add_argument("--max-frames", type=int, default=None)
    args = ap.parse_args()
    if not Path(args.video).is_file():
        raise SystemExit(f"{args.video}: not found (Debian: apt install opencv-doc, or pass --video)")
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp), args.size)
        pure, n = pure_inference_fps(model, args.video, args.threads, args.max_frames)
        rows = [("pure inference (pre-decoded frames)", pure, n)]
        for name, extra in (("edgecv run --events", {}), ("edgecv run --events --save", {"save": f"{tmp}/out.mp4"})):
            s = run_pipeline(PipelineSpec(model=str(model), source=args.video, threads=args.threads,
                                          max_frames=args.max_frames, events=f"{tmp}/events.jsonl", **extra))
            rows.append((name, s["fps"], s["frames"]))
    print(f"{Path(str(model)).name} on {Path(args.video).name}, {args.threads} inference thread(s)")
    print(f"{'':<38} {'frames':>6} {'fps':>8} {'/ pure':>7}")
    for name, fps, frames in rows:
        print(f"{name:<38} {frames:>6} {fps:>8.1f} {fps / pure:>7.2f}")


if __name__ == "__main__":
    main()
