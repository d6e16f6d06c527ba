"""Shared by the benchmark scripts (run as ``python benchmarks/X.py``, so this folder is on sys.path)."""

from __future__ import annotations

import time

import numpy as np


def p50_ms(fn, runs: int, warmup: int = 5) -> float:
    """Median wall time of ``fn()`` in ms over ``runs`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))
