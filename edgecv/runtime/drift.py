"""Covariate-shift monitor: per-frame statistics compared with the training inputs' distribution.

Export measures, on a sample of the train split, the distribution of each statistic (brightness, contrast,
the three chromaticities of the colour histogram, and the model's confidence) as quantile bins; the artifact
carries them. On the device a rolling window of the same statistics is compared with the reference by the
population stability index (PSI); a statistic whose PSI passes the threshold (0.25, the usual "significant
shift" level) yields a drift event naming it. numpy only: the device and export share this code.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

STATS = ("brightness", "contrast", "red", "green", "blue", "confidence")
BINS = 10


def frame_stats(rgb_or_bgr: np.ndarray, order: str = "BGR") -> dict[str, float]:
    """Image statistics on a 64x64 thumbnail (cheap enough for every frame)."""
    small = cv2.resize(rgb_or_bgr, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    if order == "BGR":
        small = small[..., ::-1]
    gray = small @ np.array([0.299, 0.587, 0.114], np.float32)
    means = small.reshape(-1, 3).mean(0)
    chroma = means / max(float(means.sum()), 1e-6)
    return {"brightness": float(gray.mean() / 255), "contrast": float(gray.std() / 255),
            "red": float(chroma[0]), "green": float(chroma[1]), "blue": float(chroma[2])}


def build_reference(stats: Iterable[dict[str, float]]) -> dict[str, Any]:
    """Quantile bin edges per statistic (the reference has ~equal mass per bin)."""
    rows = list(stats)
    ref = {}
    for name in STATS:
        values = np.asarray([r[name] for r in rows if name in r], np.float64)
        if len(values) < BINS:
            continue
        edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
        expected = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1) / len(values)
        ref[name] = {"edges": edges.round(6).tolist(), "expected": expected.round(6).tolist()}
    return {"method": "psi", "bins": BINS, "n": len(rows), "stats": ref}


def psi(expected: np.ndarray, edges: np.ndarray, values: np.ndarray) -> float:
    actual = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(expected)) / max(len(values), 1)
    e, a = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


class DriftMonitor:
    """Feed it ``observe(frame, confidence)``; it returns drift events (dicts) when a statistic has moved."""

    def __init__(self, reference: dict[str, Any], window: int = 120, every: int = 30, threshold: float = 0.25,
                 capture_dir: str | Path | None = None, capture_every_s: float = 5.0, capture_max: int = 200):
        self.reference = {k: (np.asarray(v["expected"]), np.asarray(v["edges"])) for k, v in reference["stats"].items()}
        self.window, self.every, self.threshold = window, every, threshold
        self.values = {k: deque(maxlen=window) for k in self.reference}
        self.seen, self.drifting = 0, set()
        self.capture_dir = Path(capture_dir) if capture_dir else None
        self.capture_every_s, self.capture_max, self._last_capture, self.captured = capture_every_s, capture_max, 0.0, 0
        if self.capture_dir:
            self.capture_dir.mkdir(parents=True, exist_ok=True)

    def observe(self, bgr: np.ndarray, confidence: float | None = None) -> list[dict[str, Any]]:
        stats = frame_stats(bgr)
        if confidence is not None:
            stats["confidence"] = confidence
        for k, q in self.values.items():
            if k in stats:
                q.append(stats[k])
        self.seen += 1
        events = []
        if self.seen >= self.window and self.seen % self.every == 0:
            scores = {k: psi(*self.reference[k], np.asarray(q)) for k, q in self.values.items() if len(q)}
            moved = {k for k, s in scores.items() if s > self.threshold}
            for k in sorted(moved - self.drifting):
                events.append({"event": "drift", "statistic": k, "psi": round(scores[k], 3), "frame": self.seen,
                               "window": self.window, "t": time.time()})
            for k in sorted(self.drifting - moved):
                events.append({"event": "drift_cleared", "statistic": k, "psi": round(scores[k], 3), "frame": self.seen,
                               "t": time.time()})
            self.drifting = moved
        if self.drifting and self.capture_dir is not None:
            self._capture(bgr)
        return events

    def _capture(self, bgr: np.ndarray) -> None:
        now = time.monotonic()
        if self.captured >= self.capture_max or now - self._last_capture < self.capture_every_s:
            return
        cv2.imwrite(str(self.capture_dir / f"drift_{self.seen:08d}.jpg"), bgr)
        self._last_capture, self.captured = now, self.captured + 1
