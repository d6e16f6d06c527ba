"""Fidelity: every artifact is run on the run's test split through the SAME backend code the device uses
(``edgecv.runtime.backends``, no torch) and compared with torch fp32 on the same preprocessed pixels."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edgecv.export.calibration import read_images
from edgecv.runtime.backends import Backend, create_backend
from edgecv.runtime.preprocess import prepare_input


@dataclass(frozen=True)
class EvalSet:
    """Test images at the model's input size (uint8 RGB), their labels and the torch fp32 outputs on them."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    files: tuple[str, ...]
    skipped: int = 0


def load_eval_set(name: str, root: str | Path, files: Sequence[str], labels: Sequence[int],
                  input_size: tuple[int, int]) -> EvalSet:
    images, kept, skipped = read_images(root, files, input_size, f"{name} images")
    return EvalSet(name, images, np.asarray(labels)[kept], tuple(files[i] for i in kept), skipped)


def top1(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(outputs.argmax(1) == labels)) if len(labels) else float("nan")


# task -> (metric name, metric(outputs, labels) in [0, 1]); the detector and embedder tasks add theirs.
METRICS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], float]]] = {"classify": ("top1", top1)}


def run_backend(path: str | Path, images: np.ndarray, threads: int | None = None,
                backend: Backend | None = None) -> tuple[np.ndarray, list[float], Any]:
    """Outputs (first output tensor, float32) of every image at batch 1, and per-image latency in ms
    (``backend``: one already loaded from ``path``)."""
    backend = backend or create_backend(path, threads=threads)
    xs = [prepare_input(im, backend.meta)[None] for im in images]
    backend.infer(xs[0])  # warm-up: first call allocates and plans
    outs, ms = [], []
    for x in tqdm(xs, desc=f"fidelity {Path(path).name}", disable=None, leave=False):
        t = time.perf_counter()
        outs.append(backend.infer(x)[0])
        ms.append((time.perf_counter() - t) * 1e3)
    return np.concatenate(outs), ms, backend


def measure(path: str | Path, eval_set: EvalSet, reference: np.ndarray, task: str,
            threads: int | None = None) -> dict[str, Any]:
    """One row of the export report for the artifact at ``path``."""
    metric_name, metric = METRICS[task]
    out, ms, backend = run_backend(path, eval_set.images, threads)
    ref_metric, value = metric(reference, eval_set.labels), metric(out, eval_set.labels)
    return {
        "file": Path(path).name,
        "format": Path(path).suffix.lstrip("."),
        "precision": backend.meta.precision,
        "backend": backend.name,
        "providers": backend.providers,
        "split": eval_set.name,
        "n": len(eval_set.labels),
        "metric": metric_name,
        "value": value,
        "reference": ref_metric,
        "drop_points": round((ref_metric - value) * 100, 4),
        "top1_agreement": float(np.mean(out.argmax(1) == reference.argmax(1))),
        "max_abs_diff": float(np.abs(out - reference).max()),
        "size_mb": Path(path).stat().st_size / 1e6,
        "latency_p50_ms": float(np.percentile(ms, 50)),
        "threads": threads,
    }
