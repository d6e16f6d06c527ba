"""Names decided per face track, from the evidence of all its frames.

Matching each frame's embedding alone makes names flicker: a person whose per-frame similarity wanders around the
threshold (0.50-0.77 against a threshold of ~0.6 on the demo) is "alice" in one frame and "unknown" in the next.
Here a track's identity is its mean embedding (the L2-normalised sum of its frames' embeddings, which averages the
per-frame noise away) matched against the gallery with the calibrated threshold, applied once per track per frame.
Once named, a track keeps its name while it lives unless its mean comes to match another enrolled person above the
threshold; a stranger is never named, because the mean of a stranger's embeddings is no closer to anyone enrolled
than its frames were.

A box tracker links faces by position only, so when one person leaves and another steps into the same place the
box track can jump from one to the other, and a name would stick to the wrong face. So every frame's embedding is
checked against its track's mean first: below ``gate`` (the artifact's calibrated 1:1 ``verify`` threshold: "not
the same person") the face starts a new face track, with its own id and no evidence. The ids reported are these
face-track ids.
"""

from __future__ import annotations

import numpy as np

from edgecv.runtime.faces.gallery import l2_normalize
from edgecv.runtime.faces.match import identify


class TrackIdentities:
    def __init__(self, threshold: float, gate: float, forget_frames: int = 300):
        self.threshold, self.gate, self.forget_frames = threshold, gate, forget_frames
        self._face: dict[int, int] = {}  # box track id -> face track id
        self._sum: dict[int, np.ndarray] = {}  # face track id -> sum of its embeddings
        self._frames: dict[int, int] = {}
        self._name: dict[int, str | None] = {}
        self._seen: dict[int, int] = {}
        self._next = 1
        self._frame = 0
        self.breaks = 0  # box tracks that changed person (a new face track each time)

    def _face_id(self, box_id: int, e: np.ndarray) -> int:
        fid = self._face.get(box_id)
        if fid is not None and fid in self._sum:
            if float(l2_normalize(self._sum[fid][None])[0] @ e) >= self.gate:
                return fid
            self.breaks += 1
        fid, self._next = self._next, self._next + 1
        self._face[box_id] = fid
        return fid

    def decide(self, track_ids: np.ndarray, embeddings: np.ndarray, templates) -> tuple[np.ndarray, list, list, np.ndarray]:
        """(face-track ids, names, nearest names, similarities of each face track's mean embedding) for this
        frame's tracked faces (``track_ids``: the box tracker's ids)."""
        self._frame += 1
        fids = []
        for tid, e in zip(track_ids.tolist(), embeddings):
            fid = self._face_id(tid, e)
            self._sum[fid] = self._sum.get(fid, 0) + e
            self._frames[fid] = self._frames.get(fid, 0) + 1
            self._seen[fid] = self._frame
            fids.append(fid)
        self._forget()
        ids = np.asarray(fids, np.int64)
        if not fids:
            return ids, [], [], np.zeros(0, np.float32)
        means = l2_normalize(np.stack([self._sum[f] for f in fids]).astype(np.float32))
        names, nearest, sims = identify(means, templates, self.threshold)
        out = []
        for fid, name in zip(fids, names):
            before = self._name.get(fid)
            if name is None and before is not None:
                name = before  # once recognised, the face track stays named (unless another person matches)
            self._name[fid] = name
            out.append(name)
        return ids, out, nearest, sims

    def frames(self, face_id: int) -> int:
        return self._frames.get(face_id, 0)

    def _forget(self) -> None:
        gone = {f for f, seen in self._seen.items() if self._frame - seen > self.forget_frames}
        for fid in gone:
            for d in (self._sum, self._frames, self._name, self._seen):
                d.pop(fid, None)
        for tid in [t for t, f in self._face.items() if f in gone]:
            del self._face[tid]
