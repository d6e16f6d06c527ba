"""Zones and lines over tracked detections: ``zone_enter`` / ``zone_exit`` (with dwell time) and ``line_cross``
(with direction) events, and running counts per zone, line and class for the telemetry summary.

A zones file (``edgecv run DET --zones zones.yaml``), validated like a recipe (errors name the file and field)::

    units: normalized          # or pixels: every coordinate below is in these units
    zones:
      - name: door
        polygon: [[0.1, 0.2], [0.45, 0.2], [0.45, 0.95], [0.1, 0.95]]
        classes: [person]      # optional: only these labels
    lines:
      - name: entrance
        points: [[0.5, 0.0], [0.5, 1.0]]

An object is where its box's bottom centre is (its feet on the floor: what a camera looking down at a scene
means by "in the zone"). A line is crossed when that point moves from one side of the segment to the other
through the segment itself; direction ``in`` is from the left of the line to its right, walking from its first
point to its second in image coordinates (y down), ``out`` the other way. An object whose track ends inside a
zone leaves it after ``forget_s`` seconds without being seen (``zone_exit`` with ``"lost": true``). Only tracked
boxes count (an id that lives across frames is what makes "entered" mean anything), so ``--zones`` needs
tracking on.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgecv.recipes import load_validated
from edgecv.results import Detections

Point = tuple[float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneSpec(_Strict):
    name: str = Field(min_length=1)
    polygon: list[Point] = Field(min_length=3)
    classes: list[str] | None = None


class LineSpec(_Strict):
    name: str = Field(min_length=1)
    points: tuple[Point, Point]
    classes: list[str] | None = None


class ZonesFile(_Strict):
    units: Literal["normalized", "pixels"]
    zones: list[ZoneSpec] = []
    lines: list[LineSpec] = []

    @model_validator(mode="after")
    def _check(self) -> "ZonesFile":
        names = [z.name for z in self.zones] + [ln.name for ln in self.lines]
        if len(set(names)) != len(names):
            raise ValueError(f"zone and line names must be unique (got {names})")
        if not names:
            raise ValueError("define at least one zone or line")
        if self.units == "normalized":
            coords = [c for z in self.zones for p in z.polygon for c in p] + [
                c for ln in self.lines for p in ln.points for c in p
            ]
            if any(c < 0 or c > 1 for c in coords):
                raise ValueError("normalized coordinates lie in 0..1 (use units: pixels for pixel coordinates)")
        return self


def load_zones(path: str | Path) -> ZonesFile:
    return load_validated(path, ZonesFile, "a mapping (units, zones, lines)")


def anchors(xyxy: np.ndarray) -> np.ndarray:
    """Bottom centres of the boxes."""
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], 1)


def _side(p1: np.ndarray, p2: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """> 0 right of the line p1 -> p2 (walking from p1 to p2 in image coordinates, y down), < 0 left, 0 on it."""
    d = p2 - p1
    return d[0] * (pts[:, 1] - p1[1]) - d[1] * (pts[:, 0] - p1[0])


def _crosses_segment(p1: np.ndarray, p2: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """Does the move a -> b pass through the segment p1 p2 (not only its infinite line)?"""
    s1, s2 = _side(a, b, p1[None])[0], _side(a, b, p2[None])[0]
    return s1 * s2 <= 0


class Analytics:
    """Feed ``observe(detections, pts)`` the tracked detections of every frame; it returns the frame's events."""

    def __init__(self, spec: ZonesFile, forget_s: float = 2.0):
        self.spec, self.forget_s = spec, forget_s
        self._size: tuple[int, int] | None = None
        self._polygons: list[np.ndarray] = []
        self._lines: list[tuple[np.ndarray, np.ndarray]] = []
        self._inside: dict[str, dict[int, float]] = {z.name: {} for z in spec.zones}  # zone -> track -> since
        self._sides: dict[tuple[str, int], tuple[float, np.ndarray]] = {}  # (line, track) -> last side, point
        self._last_seen: dict[int, float] = {}
        self._label: dict[int, str] = {}
        self.counts: dict[str, dict[str, dict[str, int]]] = {
            **{z.name: {"entered": defaultdict(int), "exited": defaultdict(int)} for z in spec.zones},
            **{ln.name: {"in": defaultdict(int), "out": defaultdict(int)} for ln in spec.lines},
        }

    def _geometry(self, width: int, height: int) -> None:
        scale = np.array([width, height], np.float64) if self.spec.units == "normalized" else np.ones(2)
        self._polygons = [np.asarray(z.polygon, np.float64) * scale for z in self.spec.zones]
        self._lines = [(np.asarray(ln.points[0]) * scale, np.asarray(ln.points[1]) * scale) for ln in self.spec.lines]
        self._size = (width, height)

    def observe(self, dets: Detections, pts: float, frame_size: tuple[int, int]) -> list[dict[str, Any]]:
        if self._size != frame_size:
            self._geometry(*frame_size)
        if dets.track_ids is None:
            return []
        events: list[dict[str, Any]] = []
        where = anchors(dets.xyxy.astype(np.float64))
        for k, tid in enumerate(dets.track_ids.tolist()):
            label = dets.labels[k] if dets.labels else str(int(dets.class_ids[k]))
            self._label[tid] = label
            events += self._zones(tid, label, where[k], pts)
            events += self._cross(tid, label, where[k], pts)
            self._last_seen[tid] = pts
        events += self._forget(pts)
        return events

    def exchange(self, a: int, b: int) -> None:
        """Track ids ``a`` and ``b`` were on each other's objects (the tracker put them back): what each has said
        since, in a zone since when and which side of a line, is the other's. Swapped, so that the ids' jump back
        to their objects crosses no line and enters or leaves no zone."""
        for state in (*self._inside.values(), self._last_seen, self._label):
            _swap_keys(state, a, b)
        for line in self.spec.lines:
            _swap_keys(self._sides, (line.name, a), (line.name, b))

    def _applies(self, classes: list[str] | None, label: str) -> bool:
        return classes is None or label in classes

    def _zones(self, tid: int, label: str, point: np.ndarray, pts: float) -> list[dict[str, Any]]:
        events = []
        for zone, poly in zip(self.spec.zones, self._polygons):
            if not self._applies(zone.classes, label):
                continue
            inside = cv2.pointPolygonTest(poly.astype(np.float32), (float(point[0]), float(point[1])), False) >= 0
            was = tid in self._inside[zone.name]
            if inside and not was:
                self._inside[zone.name][tid] = pts
                self.counts[zone.name]["entered"][label] += 1
                events.append(
                    {"event": "zone_enter", "zone": zone.name, "track_id": tid, "label": label, "stream_s": round(pts, 2)}
                )
            elif was and not inside:
                events.append(self._exit(zone.name, tid, label, pts, lost=False))
        return events

    def _exit(self, zone: str, tid: int, label: str, pts: float, lost: bool) -> dict[str, Any]:
        since = self._inside[zone].pop(tid)
        self.counts[zone]["exited"][label] += 1
        return {
            "event": "zone_exit",
            "zone": zone,
            "track_id": tid,
            "label": label,
            "stream_s": round(pts, 2),
            "dwell_s": round(pts - since, 2),
            **({"lost": True} if lost else {}),
        }

    def _cross(self, tid: int, label: str, point: np.ndarray, pts: float) -> list[dict[str, Any]]:
        events = []
        for line, (p1, p2) in zip(self.spec.lines, self._lines):
            if not self._applies(line.classes, label):
                continue
            side = float(_side(p1, p2, point[None])[0])
            if side == 0:  # on the line: decided by where it goes next
                continue
            key = (line.name, tid)
            before = self._sides.get(key)
            self._sides[key] = (side, point)
            if before is None or before[0] * side > 0 or not _crosses_segment(p1, p2, before[1], point):
                continue
            direction = "in" if before[0] < 0 else "out"
            self.counts[line.name][direction][label] += 1
            events.append(
                {
                    "event": "line_cross",
                    "line": line.name,
                    "direction": direction,
                    "track_id": tid,
                    "label": label,
                    "stream_s": round(pts, 2),
                }
            )
        return events

    def _forget(self, pts: float) -> list[dict[str, Any]]:
        events = []
        for tid in [t for t, seen in self._last_seen.items() if pts - seen > self.forget_s]:
            for zone in self._inside:
                if tid in self._inside[zone]:
                    events.append(self._exit(zone, tid, self._label[tid], self._last_seen[tid], lost=True))
            del self._last_seen[tid], self._label[tid]
            for line in self.spec.lines:
                self._sides.pop((line.name, tid), None)
        return events

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, counts in self.counts.items():
            out[name] = {k: dict(v) for k, v in counts.items()}
            if name in self._inside:
                out[name]["inside_now"] = len(self._inside[name])
        return out


def _swap_keys(state: dict, a, b) -> None:
    """``state``'s entries for keys ``a`` and ``b`` exchanged (either may be absent)."""
    va, vb = state.pop(a, None), state.pop(b, None)
    if vb is not None:
        state[a] = vb
    if va is not None:
        state[b] = va
