"""Face events for the JSON-lines sink: ``known_face`` when an enrolled person appears, ``unknown_face`` for a
face below the match threshold; each repeats at most once per ``cooldown_s`` of stream time per person
(unknown faces share one cooldown)."""

from __future__ import annotations

from typing import Any

from edgecv.results import Faces


class FaceEvents:
    def __init__(self, cooldown_s: float = 5.0):
        self.cooldown_s = cooldown_s
        self._last: dict[str | None, float] = {}

    def __call__(self, faces: Faces, frame_index: int, t: float) -> list[dict[str, Any]]:
        out = []
        for i, name in enumerate(faces.names):
            last = self._last.get(name)
            if last is not None and t - last < self.cooldown_s:
                continue
            self._last[name] = t
            box = [round(float(v), 1) for v in faces.xyxy[i]]
            sim = round(float(faces.similarities[i]), 4)
            if name is None:
                nearest = faces.nearest[i] if faces.nearest else None
                out.append({"event": "unknown_face", "frame": frame_index, "similarity": sim, "nearest": nearest,
                            "xyxy": box})
            else:
                out.append({"event": "known_face", "frame": frame_index, "name": name, "similarity": sim, "xyxy": box})
        return out
