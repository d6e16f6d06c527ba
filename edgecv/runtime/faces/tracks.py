"""Names decided per face track, from the evidence of all its frames.

Matching each frame's embedding alone makes names flicker: a person whose per-frame similarity wanders around the
threshold (0.50-0.77 against a threshold of ~0.6 on the demo) is "alice" in one frame and "unknown" in the next.
Here a track's identity is its mean embedding (the L2-normalised sum of its frames' embeddings, which averages the
per-frame noise away) matched against the gallery with the calibrated threshold, applied once per track per frame.
Once named, a track keeps its name while it lives unless its mean comes to match another enrolled person above the
threshold; a stranger is never named, because the mean of a stranger's embeddings is no closer to anyone enrolled
than its frames were.
"""

from __future__ import annotations

import numpy as np

from edgecv.runtime.faces.gallery import l2_normalize
from edgecv.runtime.faces.match import identify


class TrackIdentities:
    def __init__(self, threshold: float, forget_frames: int = 300):
        self.threshold, self.forget_frames = threshold, forget_frames
        self._sum: dict[int, np.ndarray] = {}
        self._frames: dict[int, int] = {}
        self._name: dict[int, str | None] = {}
        self._seen: dict[int, int] = {}
        self._frame = 0

    def decide(self, track_ids: np.ndarray, embeddings: np.ndarray, templates) -> tuple[list, list, np.ndarray]:
        """(names, nearest names, similarities of each track's mean embedding) for this frame's tracked faces."""
        self._frame += 1
        ids = track_ids.tolist()
        for tid, e in zip(ids, embeddings):
            self._sum[tid] = self._sum.get(tid, 0) + e
            self._frames[tid] = self._frames.get(tid, 0) + 1
            self._seen[tid] = self._frame
        self._forget()
        if not ids:
            return [], [], np.zeros(0, np.float32)
        means = l2_normalize(np.stack([self._sum[t] for t in ids]).astype(np.float32))
        names, nearest, sims = identify(means, templates, self.threshold)
        out = []
        for tid, name in zip(ids, names):
            before = self._name.get(tid)
            if name is None and before is not None:
                name = before  # once recognised, the track stays named (unless another person matches)
            self._name[tid] = name
            out.append(name)
        return out, nearest, sims

    def frames(self, track_id: int) -> int:
        return self._frames.get(track_id, 0)

    def _forget(self) -> None:
        for tid in [t for t, f in self._seen.items() if self._frame - f > self.forget_frames]:
            for d in (self._sum, self._frames, self._name, self._seen):
                d.pop(tid, None)
