"""How far an artifact is from what this machine can do: its MACs, the GMAC/s it achieves at its p50, and this
machine's peak dense GEMM throughput through the same runtime (onnxruntime), fp32 and int8, measured once by edgecv
itself and cached per machine, runtime version and thread count. Needs no torch.

The peak is a 1024 x 1024 x 1024 matrix product (``scripts/peak_models.py`` made the two tiny models whose bytes
are below; both matrices are inputs, so nothing else is in them): fp32 ``MatMul`` and int8 ``MatMulInteger`` (uint8
x int8 -> int32: onnxruntime's fast int8 kernels, VNNI or dot-product instructions). With the second matrix an
input it is packed on every call, which a model's constant weights are not: a lower bound of the peak by some 15%
for fp32 (48 vs 57 GMAC/s at 1 thread here), so a well-fed fp32 artifact may show a little over 100%.

A convolutional network rarely reaches the peak: depthwise convolutions, small layers and the memory traffic
between layers keep it below; "% of peak" says by how much, which is what tells a compute-bound model (near the
peak: only fewer MACs or a lower precision help) from one the runtime or the memory holds back.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

M, K, N = 1024, 1024, 1024
PEAK_MODELS = {  # python scripts/peak_models.py
    "fp32": "CAg6XgoRCgFhCgFiEgF5IgZNYXRNdWwSBHBlYWtaFQoBYRIQCg4IARIKCgMIgAgKAwiACFoVCgFiEhAKDggBEgoKAwiACAoDCIAIYhUKAXkS"
    "EAoOCAESCgoDCIAICgMIgAhCBAoAEA0=",
    "int8": "CAg6ZQoYCgFhCgFiEgF5Ig1NYXRNdWxJbnRlZ2VyEgRwZWFrWhUKAWESEAoOCAISCgoDCIAICgMIgAhaFQoBYhIQCg4IAxIKCgMIgAgKAwiA"
    "CGIVCgF5EhAKDggGEgoKAwiACAoDCIAIQgQKABAN",
}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgecv" / "peak.json"


def gemm_inputs(precision: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if precision == "int8":
        # the second matrix in [-64, 64] (7-bit, as onnxruntime's reduce_range weights): x86 int8 kernels without VNNI
        # sum pairs of uint8 x int8 products in 16 bits, which 2 * 255 * 127 overflows and 2 * 255 * 64 does not, so
        # the product is exact on every CPU; the kernel, and its speed, are the same
        return {"a": rng.integers(0, 256, (M, K), dtype=np.uint8), "b": rng.integers(-64, 65, (K, N), dtype=np.int8)}
    return {"a": rng.standard_normal((M, K), dtype=np.float32), "b": rng.standard_normal((K, N), dtype=np.float32)}


def peak_session(precision: str, threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(base64.b64decode(PEAK_MODELS[precision]), opts, providers=["CPUExecutionProvider"])


def measure_peak(precision: str, threads: int | None, seconds: float = 1.0) -> float:
    """GMAC/s of the best of repeated GEMMs for about ``seconds`` (after a warm-up)."""
    session, feeds = peak_session(precision, threads), gemm_inputs(precision)
    session.run(None, feeds)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - t)
    return M * K * N / best / 1e9


def machine_peak(threads: int | None, refresh: bool = False) -> dict[str, Any]:
    """{"fp32": GMAC/s, "int8": GMAC/s, ...} of this machine through onnxruntime at ``threads`` (None: its
    default), from the cache unless ``refresh`` or not measured yet."""
    import onnxruntime as ort

    key = f"{cpu_name()} | onnxruntime {ort.__version__} | threads {threads or 'default'}"
    path = cache_path()
    try:
        cache = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    if refresh or key not in cache:
        cache[key] = {p: round(measure_peak(p, threads), 2) for p in ("fp32", "int8")}
        cache[key]["measured"] = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(path)
        except OSError:
            pass  # a read-only home: measured again next time
    return {**cache[key], "key": key, "cache": str(path)}


def artifact_macs(path: str | Path) -> int | None:
    """MACs of one inference (``edgecv inspect``'s count): .tflite through LiteRT, .onnx through onnx when it is
    installed (the device's edgecv[runtime] has no onnx package: None)."""
    from edgecv.tools.inspect import inspect_onnx, inspect_tflite

    path = Path(path)
    if path.suffix == ".tflite":
        return inspect_tflite(path).macs
    if path.suffix == ".onnx":
        try:
            import onnx  # noqa: F401
        except ImportError:
            return None
        return inspect_onnx(path).macs
    return None


def roofline(row: dict[str, Any], macs: int | None, peak: dict[str, Any] | None) -> dict[str, Any]:
    """``row``'s achieved GMAC/s at its p50 and its share of the peak of its precision (fp16 runs on fp32 units)."""
    if not macs:
        return {"macs": macs, "gmacs": None, "peak_gmacs": None, "pct_of_peak": None}
    gmacs = macs / (row["p50_ms"] / 1e3) / 1e9
    top = (peak or {}).get("int8" if row["precision"] == "int8" else "fp32") if row["backend"] == "onnxruntime" else None
    return {
        "macs": int(macs),
        "gmacs": round(gmacs, 2),
        "peak_gmacs": top,
        "pct_of_peak": round(100 * gmacs / top, 1) if top else None,
    }
