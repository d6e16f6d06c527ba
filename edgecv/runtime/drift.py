"""Input drift on a camera: "is it seeing inputs unlike the training data, or unlike its own recent past?"

Why not a distribution test: a fixed camera shows one scene, a narrow slice of the training distribution, so
any test of a window of its frames against the whole training set (PSI, KS, ...) says "drifted" forever (the first
design did: PSI ~8 on a test image held still). Two per-frame checks instead, each decided over a few seconds of
stream time, each with hysteresis:

- **training**: a frame is out of range when one of its statistics lies outside what the training images span
  (their min..max, widened by half their inter-quartile range). In-distribution scenes, however narrow, are in
  range frame by frame; a camera pointed at something darker, greyer or more colourful than any training image is
  not. Alarm when >= 80% of the last ``window_s`` seconds' frames are out, cleared under 20%.
- **site**: after a warm-up (``warmup_s``) the monitor remembers the statistics the camera itself showed (a ring of
  samples covering the last ~10 minutes, at most ``memory`` of them). A frame is novel when no remembered sample is
  within ``novelty`` training inter-quartile ranges of it on every statistic (nearest neighbour, max-norm). A
  scene held still, or one that cycles through views the camera has shown before, is never novel; the same scene
  at half the light, or another place, is. Novel frames are not remembered (a drift never becomes the baseline
  by itself), except that a site alarm lasting ``relearn_after_s`` resets the baseline with a
  ``site_baseline_reset`` event (the camera was moved for good). Same 80% / 20% rule. A camera whose view keeps
  changing to places it never showed (a patrolling PTZ camera, a belt of ever-new objects) trips this check by
  design; run it with ``checks=("training",)`` (``edgecv run --drift-checks training``).

The statistics: brightness, contrast, the three chromaticities, and the model's confidence (classifiers: top
softmax; detectors: the best box score after the confidence filter the reference was measured with). The reference
is computed by export with this module's ``frame_stats`` on the raw training images in the colour order the device
reads frames (BGR), not on the letterboxed model inputs: what the device measures is what it is compared with.
Measured by ``benchmarks/drift.py`` (false alarms per hour, detection delay). numpy + OpenCV only.
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
METHOD = "range+site"
CHECKS = ("training", "site")
VERSION = 2
_FLOOR = {"confidence": 0.05}  # smallest scale per statistic (a confident model's confidence IQR is ~0)
_FLOOR_DEFAULT = 0.01


def frame_stats(bgr: np.ndarray, order: str = "BGR") -> dict[str, float]:
    """Image statistics on a 64x64 thumbnail (cheap enough for every frame)."""
    small = cv2.resize(bgr, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    if order == "BGR":
        small = small[..., ::-1]
    gray = small @ np.array([0.299, 0.587, 0.114], np.float32)
    means = small.reshape(-1, 3).mean(0)
    chroma = means / max(float(means.sum()), 1e-6)
    return {
        "brightness": float(gray.mean() / 255),
        "contrast": float(gray.std() / 255),
        "red": float(chroma[0]),
        "green": float(chroma[1]),
        "blue": float(chroma[2]),
    }


def build_reference(rows: Iterable[dict[str, float]], confidence_filter: float | None = None) -> dict[str, Any]:
    """The reference the artifact carries: per statistic, the training images' min, quartiles and max."""
    rows = list(rows)
    quantiles = {}
    for name in STATS:
        values = np.asarray([r[name] for r in rows if name in r], np.float64)
        if len(values) >= 5:
            quantiles[name] = np.quantile(values, [0, 0.25, 0.5, 0.75, 1]).round(6).tolist()
    ref: dict[str, Any] = {"method": METHOD, "version": VERSION, "n": len(rows), "quantiles": quantiles}
    if confidence_filter is not None:
        ref["confidence_filter"] = confidence_filter
    return ref


def reference_problem(reference: dict[str, Any] | None) -> str | None:
    """Why this reference cannot be used (None: it can)."""
    if not reference:
        return (
            "the artifact carries no drift reference (`edgecv export` writes one for classifiers and detectors; "
            "face embedders see chips, not frames)"
        )
    if reference.get("method") != METHOD or reference.get("version") != VERSION:
        return (
            "its drift reference is from an older edgecv (letterboxed images, PSI), which cries wolf on a fixed "
            "camera; re-export the artifact with this edgecv"
        )
    if not reference.get("quantiles"):
        return "its drift reference is empty (fewer than 5 reference images)"
    return None


class DriftMonitor:
    """``observe(bgr, confidence, pts)`` per frame (``pts``: stream seconds); returns ``drift`` /
    ``drift_cleared`` / ``site_baseline_reset`` events (dicts)."""

    def __init__(
        self,
        reference: dict[str, Any],
        checks: tuple[str, ...] = CHECKS,
        window_s: float = 5.0,
        warmup_s: float = 30.0,
        novelty: float = 1.0,
        memory: int = 600,
        relearn_after_s: float = 900.0,
        alarm: float = 0.8,
        clear: float = 0.2,
        every_s: float = 0.5,
        capture_dir: str | Path | None = None,
        capture_every_s: float = 5.0,
        capture_max: int = 200,
    ):
        problem = reference_problem(reference)
        if problem:
            raise ValueError(problem)
        unknown = sorted(set(checks) - set(CHECKS))
        if unknown or not checks:
            raise ValueError(f"drift checks {unknown or list(checks)}: choose from {', '.join(CHECKS)}")
        self.checks = tuple(checks)
        q = reference["quantiles"]
        self.names = [n for n in STATS if n in q]
        qs = np.asarray([q[n] for n in self.names], np.float64)  # (stats, 5)
        iqr = qs[:, 3] - qs[:, 1]
        floors = np.asarray([_FLOOR.get(n, _FLOOR_DEFAULT) for n in self.names])
        self.scale = np.maximum(iqr, floors)
        self.lo, self.hi = qs[:, 0] - 0.5 * self.scale, qs[:, 4] + 0.5 * self.scale
        self.window_s, self.warmup_s, self.novelty, self.relearn_after_s = window_s, warmup_s, novelty, relearn_after_s
        self.alarm, self.clear, self.every_s = alarm, clear, every_s
        self._memory: deque[np.ndarray] = deque(maxlen=memory)
        self._remember_every = {True: warmup_s / max(memory // 5, 1), False: 1.0}  # warm-up: denser sampling
        self._recent: deque[tuple[float, np.ndarray, np.ndarray | None]] = deque()
        self._base_t: float | None = None  # when the current site baseline started
        self._last_kept = -1e9
        self._last_check = -1e9
        self._since: dict[str, float] = {}
        self.drifting: set[str] = set()
        self.seen = self.alarms = self.resets = 0
        self.capture_dir = Path(capture_dir) if capture_dir else None
        self.capture_every_s, self.capture_max, self._last_capture, self.captured = capture_every_s, capture_max, 0.0, 0
        if self.capture_dir:
            self.capture_dir.mkdir(parents=True, exist_ok=True)

    def vector(self, bgr: np.ndarray, confidence: float | None) -> np.ndarray:
        stats = frame_stats(bgr)
        stats["confidence"] = np.nan if confidence is None else float(confidence)
        return np.asarray([stats[n] for n in self.names], np.float64)

    def _site_novelty(self, v: np.ndarray) -> np.ndarray | None:
        """Per-statistic distance (in scale units) to the nearest remembered sample; None while warming up."""
        if not self._memory:
            return None
        mem = np.asarray(self._memory)
        d = np.abs(mem - v) / self.scale
        d = np.where(np.isnan(d), 0.0, d)
        nearest = int(np.argmin(d.max(1)))
        return d[nearest]

    def observe(self, bgr: np.ndarray, confidence: float | None = None, pts: float | None = None) -> list[dict[str, Any]]:
        pts = float(self.seen) / 30.0 if pts is None else float(pts)
        self.seen += 1
        v = self.vector(bgr, confidence)
        if self._base_t is None:
            self._base_t = pts
        warming = pts - self._base_t < self.warmup_s
        known = ~np.isnan(v)
        out_of_range = known & ((v < self.lo) | (v > self.hi))
        site = None if warming else self._site_novelty(v)
        novel = site is not None and float(site.max()) > self.novelty
        if not novel and pts - self._last_kept >= self._remember_every[warming]:
            self._memory.append(v)
            self._last_kept = pts
        self._recent.append((pts, out_of_range, site if novel else None))
        while self._recent and self._recent[0][0] < pts - self.window_s:
            self._recent.popleft()
        events: list[dict[str, Any]] = []
        if pts - self._last_check >= self.every_s:
            self._last_check = pts
            events = self._decide(pts, warming)
        if self.drifting and self.capture_dir is not None:
            self._capture(bgr)
        return events

    def _decide(self, pts: float, warming: bool) -> list[dict[str, Any]]:
        if len(self._recent) < 5 or pts - self._recent[0][0] < 0.8 * self.window_s:
            return []
        events = []
        train_flags = np.asarray([r[1] for r in self._recent])
        shares = {"training": float(train_flags.any(1).mean())}
        site_rows = [r[2] for r in self._recent]
        shares["site"] = 0.0 if warming else float(np.mean([r is not None for r in site_rows]))
        culprits = {
            "training": self._culprits(train_flags.mean(0)),
            "site": self._culprits(
                np.mean([r > self.novelty for r in site_rows if r is not None], 0)
                if any(r is not None for r in site_rows)
                else np.zeros(len(self.names))
            ),
        }
        for check, share in shares.items():
            if check not in self.checks:
                continue
            base = {
                "check": check,
                "share": round(share, 3),
                "frame": self.seen,
                "stream_s": round(pts, 2),
                "window_s": self.window_s,
                "t": time.time(),
            }
            if check not in self.drifting and share >= self.alarm:
                self.drifting.add(check)
                self._since[check] = pts
                self.alarms += 1
                events.append({"event": "drift", **base, "statistics": culprits[check]})
            elif check in self.drifting and share <= self.clear:
                self.drifting.discard(check)
                events.append({"event": "drift_cleared", **base, "after_s": round(pts - self._since.pop(check), 2)})
        if "site" in self.drifting and pts - self._since["site"] >= self.relearn_after_s:
            self.drifting.discard("site")
            self._since.pop("site")
            self._memory.clear()
            self._recent.clear()
            self._base_t, self.resets = pts, self.resets + 1
            events.append(
                {
                    "event": "site_baseline_reset",
                    "frame": self.seen,
                    "stream_s": round(pts, 2),
                    "after_s": self.relearn_after_s,
                    "t": time.time(),
                }
            )
        return events

    def _culprits(self, per_stat_share: np.ndarray) -> list[str]:
        """The statistics that moved in at least 30% of the window's frames (the strongest one at least)."""
        if not len(per_stat_share) or float(np.max(per_stat_share)) == 0:
            return []
        picked = [n for n, s in zip(self.names, per_stat_share) if s >= 0.3]
        return picked or [self.names[int(np.argmax(per_stat_share))]]

    def summary(self) -> dict[str, Any]:
        return {
            "drifting": sorted(self.drifting),
            "alarms": self.alarms,
            "site_baseline_resets": self.resets,
            "captured_frames": self.captured,
        }

    def _capture(self, bgr: np.ndarray) -> None:
        now = time.monotonic()
        if self.captured >= self.capture_max or now - self._last_capture < self.capture_every_s:
            return
        cv2.imwrite(str(self.capture_dir / f"drift_{self.seen:08d}.jpg"), bgr)
        self._last_capture, self.captured = now, self.captured + 1
