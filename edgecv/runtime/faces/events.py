"""Face events for the JSON-lines sink: ``known_face`` when an enrolled person appears, ``unknown_face`` for a
face below the match threshold. Tracked faces: once per track and name (a track named after a few frames gives
``unknown_face`` then ``known_face``), again only after ``cooldown_s`` of stream time; untracked faces: at most once
per ``cooldown_s`` per person (unknown faces share one cooldown)."""

from __future__ import annotations

from typing import Any

from edgecv.results import Faces


class FaceEvents:
    def __init__(self, cooldown_s: float = 5.0):
        self.cooldown_s = cooldown_s
        self._last: dict[Any, float] = {}

    def __call__(self, faces: Faces, frame_index: int, t: float) -> list[dict[str, Any]]:
        out = []
        for i, name in enumerate(faces.names):
            tid = int(faces.track_ids[i]) if faces.track_ids is not None else None
            key = name if tid is None else (tid, name)
            last = self._last.get(key)
            if last is not None and t - last < self.cooldown_s:
                continue
            self._last[key] = t
            if len(self._last) > 10_000:  # long runs: forget the oldest keys (bounded memory)
                for k in sorted(self._last, key=self._last.get)[:5_000]:
                    del self._last[k]
            box = [round(float(v), 1) for v in faces.xyxy[i]]
            sim = round(float(faces.similarities[i]), 4)
            extra = {"track_id": tid} if tid is not None else {}
            if name is None:
                nearest = faces.nearest[i] if faces.nearest else None
                out.append(
                    {"event": "unknown_face", "frame": frame_index, "similarity": sim, "nearest": nearest, "xyxy": box, **extra}
                )
            else:
                out.append({"event": "known_face", "frame": frame_index, "name": name, "similarity": sim, "xyxy": box, **extra})
        return out
