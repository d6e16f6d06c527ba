"""fp32 vs int8 latency, measured side by side in one run, in the runtimes edgecv ships.

For each model: fp32 and int8 ONNX (onnxruntime, QDQ) and fp32 and int8 TFLite (LiteRT + XNNPACK), built
by edgecv's own converters, calibrated on scikit-image's real photos; each timed at batch 1 through the
runtime backends `edgecv run` uses, at 1 and 2 threads, interleaved round-robin so machine noise hits all
variants alike. Prints p50 latency and the int8 speed-up (fp32 p50 / int8 p50), and int8 top-1 agreement
with fp32 on the photos. efficientnet_lite0 uses its offline ImageNet weights; models without offline
weights here (mobilenetv3) run from random init, which times the same graph.

``--ort-kernels`` adds, per model, why onnxruntime's int8 is as fast as it is on this CPU: the int8 ONNX built
with signed, symmetric int8 activations (what TensorRT builds engines from: ``--int8-activations int8``), with uint8
activations (edgecv's default ONNX: what x86 int8 kernels take natively) and with uint8 activations and 7-bit
weights, each run at 1 thread on onnxruntime's default int8 kernels and on its exact ones
(``session.x64quantprecision``, which edgecv's backend turns on where a probe shows the default kernels' 16-bit pair
sums saturate: x86 CPUs without VNNI): p50, speed-up over fp32, and agreement (top-1, and the cosine of the logits)
with fp32 on the photos.

    python benchmarks/export_latency.py [--models efficientnet_lite0,mobilenetv3_small_100] [--size 224] [--runs 200]
        [--threads 1,2] [--ort-kernels] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
from edgecv.data.samples import photo_crops
from edgecv.export.calibration import Calibration
from edgecv.export.onnx_int8 import onnx_int8
from edgecv.export.spec import ConvertSpec
from edgecv.export.torch2onnx import torch2onnx
from edgecv.export.torch2tflite import torch2tflite
from edgecv.models import get_spec
from edgecv.models.weights import load_imagenet_model
from edgecv.runtime.backends import create_backend
from edgecv.runtime.backends.ort import int8_saturates
from edgecv.runtime.preprocess import prepare_input


def load_model(name: str):
    """ImageNet weights when an offline package has them (no hub download attempts: this may be offline)."""
    spec = get_spec(name)
    if spec.offline is not None and importlib.util.find_spec(spec.offline.package) is not None:
        model, source = load_imagenet_model(spec)
    else:
        model, source = load_imagenet_model(spec, pretrained="none")[0], "random init (no offline weights)"
    return model.eval(), spec, source


def build(name: str, size: int, images: np.ndarray, folder: Path) -> tuple[dict[str, Path], str]:
    model, spec, source = load_model(name)
    meta = ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=[str(i) for i in range(1000)],
        input_size=(size, size),
        mean=spec.mean,
        std=spec.std,
    )
    cal = Calibration(images[::2], tuple(map(str, range(0, len(images), 2))), "photos")
    fp32 = torch2onnx(model, ConvertSpec(folder / f"{name}_fp32.onnx", meta))
    int8 = ConvertSpec(folder / f"{name}_int8.onnx", meta, "int8", cal)  # export's default activations
    paths = {"onnx fp32": fp32, "onnx int8": onnx_int8(fp32, int8)}
    for prec in ("fp32", "int8"):
        spec_ = ConvertSpec(folder / f"{name}_{prec}.tflite", meta, prec, cal if prec == "int8" else None)
        paths[f"tflite {prec}"] = torch2tflite(model, spec_)
    return paths, source


def time_backends(backends: dict, images: np.ndarray, runs: int) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Each backend's ms a call at batch 1, round-robin after a warm-up (every variant sees the same machine state),
    and its first output on every image."""
    inputs = {k: prepare_input(images[0], b.meta)[None] for k, b in backends.items()}
    ms: dict[str, list[float]] = {k: [] for k in backends}
    for k, b in backends.items():
        for _ in range(5):
            b.infer(inputs[k])  # warm-up
    for _ in range(runs):
        for k, b in backends.items():
            t = time.perf_counter()
            b.infer(inputs[k])
            ms[k].append((time.perf_counter() - t) * 1e3)
    outputs = {k: np.concatenate([b.infer(prepare_input(im, b.meta)[None])[0] for im in images]) for k, b in backends.items()}
    return ms, outputs


def time_variants(paths: dict[str, Path], images: np.ndarray, threads: int, runs: int) -> dict[str, dict]:
    ms, outputs = time_backends({k: create_backend(p, threads=threads) for k, p in paths.items()}, images, runs)
    out = {}
    for k in paths:
        fmt = k.split()[0]
        out[k] = {
            "p50_ms": float(np.median(ms[k])),
            "p99_ms": float(np.percentile(ms[k], 99)),
            "agreement_vs_fp32": float(np.mean(outputs[k].argmax(1) == outputs[f"{fmt} fp32"].argmax(1))),
        }
    return out


KERNEL_VARIANTS = {"int8 act": ("int8", 8), "uint8 act": ("uint8", 8), "uint8 act, 7-bit w": ("uint8", 7)}


def ort_kernels(name: str, fp32: Path, images: np.ndarray, folder: Path, runs: int) -> dict[str, dict]:
    """Each int8 variant of ``fp32`` on onnxruntime's default and exact int8 kernels, 1 thread, interleaved."""
    import dataclasses

    backends = {"fp32 default": create_backend(fp32, threads=1)}
    meta = backends["fp32 default"].meta
    cal = Calibration(images[::2], tuple(map(str, range(0, len(images), 2))), "photos")
    for label, (act, bits) in KERNEL_VARIANTS.items():
        spec = ConvertSpec(folder / f"{name}_{act}_{bits}.onnx", meta, "int8", cal)
        path = onnx_int8(fp32, dataclasses.replace(spec, activations=act, weight_bits=bits))
        for exact in (False, True):
            backends[f"{label} {'exact' if exact else 'default'}"] = create_backend(path, threads=1, exact_int8=exact)
    ms, outputs = time_backends(backends, images, runs)
    ref = outputs["fp32 default"]
    out = {}
    for k, lg in outputs.items():
        cos = np.sum(lg * ref, 1) / (np.linalg.norm(lg, axis=1) * np.linalg.norm(ref, axis=1))
        out[k] = {
            "p50_ms": float(np.median(ms[k])),
            "agreement_vs_fp32": float(np.mean(lg.argmax(1) == ref.argmax(1))),
            "cosine_vs_fp32": float(cos.mean()),
        }
    return out


def print_kernels(name: str, rows: dict[str, dict]) -> None:
    fp32 = rows["fp32 default"]["p50_ms"]
    print(f"\n{name}: onnxruntime int8 kernels at 1 thread (default kernels saturate on this CPU: {int8_saturates()})")
    print(f"{'int8 ONNX':<20} {'kernels':<8} {'p50 ms':>7} {'vs fp32':>8} {'agree':>6} {'cosine':>7}")
    for k, r in rows.items():
        label, kernels = k.rsplit(" ", 1)
        print(
            f"{label:<20} {kernels:<8} {r['p50_ms']:>7.2f} {fp32 / r['p50_ms']:>7.2f}x {r['agreement_vs_fp32']:>6.2f} "
            f"{r['cosine_vs_fp32']:>7.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="efficientnet_lite0,mobilenetv3_small_100")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--ort-kernels", action="store_true", help="also: onnxruntime's int8 kernels, variant by variant")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    images = photo_crops(args.size)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            paths, source = build(name, args.size, images, Path(tmp))
            print(f"\n{name} @ {args.size}px ({source}); p50 ms at batch 1, {args.runs} runs interleaved")
            print(f"{'threads':>7} {'runtime':<8} {'fp32 p50':>9} {'int8 p50':>9} {'int8 speed-up':>14} {'int8 agree':>11}")
            for threads in map(int, args.threads.split(",")):
                t = time_variants(paths, images, threads, args.runs)
                for fmt in ("onnx", "tflite"):
                    f, q = t[f"{fmt} fp32"], t[f"{fmt} int8"]
                    ratio = f["p50_ms"] / q["p50_ms"]
                    print(
                        f"{threads:>7} {fmt:<8} {f['p50_ms']:>9.2f} {q['p50_ms']:>9.2f} {ratio:>13.2f}x "
                        f"{q['agreement_vs_fp32']:>11.2f}"
                    )
                    results[f"{name}/{fmt}/{threads}"] = {"fp32": f, "int8": q, "speedup": ratio}
            if args.ort_kernels:
                results[f"{name}/ort_kernels"] = ort_kernels(name, paths["onnx fp32"], images, Path(tmp), args.runs)
                print_kernels(name, results[f"{name}/ort_kernels"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
