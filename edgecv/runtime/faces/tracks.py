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
checked against its track's mean first. Below ``gate`` (the artifact's calibrated 1:1 ``verify`` threshold) the
face is in doubt: it adds nothing to the track's evidence yet, and it is matched on its own, as an untracked face
is (named only above the match threshold, which is calibrated for single faces). A frame in doubt is usually a
bad chip (a
blink, motion blur, a half-missed face: the verify threshold is set for single photos, and half of one person's
photo pairs fall below it). After ``patience`` frames in doubt in a row, their mean (which averages the per-frame
noise away, as the track's does) decides: still below the gate, it is another person, and the face starts a new
face track, with its own id and only those frames as evidence; at or above it, the frames were the same person and
join the track's evidence. The ids reported are these face-track ids.
"""

from __future__ import annotations

import numpy as np

from edgecv.runtime.faces.gallery import l2_normalize
from edgecv.runtime.faces.match import identify


class TrackIdentities:
    def __init__(self, threshold: float, gate: float, forget_frames: int = 300, patience: int = 3):
        self.threshold, self.gate, self.forget_frames, self.patience = threshold, gate, forget_frames, patience
        self._face: dict[int, int] = {}  # box track id -> face track id
        self._doubt: dict[int, list[np.ndarray]] = {}  # box track id -> its embeddings in doubt, in a row
        self._sum: dict[int, np.ndarray] = {}  # face track id -> sum of its embeddings
        self._frames: dict[int, int] = {}
        self._name: dict[int, str | None] = {}
        self._seen: dict[int, int] = {}
        self._next = 1
        self._frame = 0
        self.breaks = 0  # box tracks that changed person (a new face track each time)

    def _face_id(self, box_id: int, e: np.ndarray) -> tuple[int, bool]:
        """The face track of box track ``box_id`` for this frame's embedding ``e``, and whether it is in doubt."""
        fid = self._face.get(box_id)
        if fid is not None and fid in self._sum:
            if float(l2_normalize(self._sum[fid][None])[0] @ e) >= self.gate:
                self._doubt.pop(box_id, None)
                return fid, False
            doubt = self._doubt.setdefault(box_id, [])
            doubt.append(e)
            if len(doubt) < self.patience:
                return fid, True
            mean = l2_normalize(np.sum(doubt, axis=0)[None])[0]
            if float(l2_normalize(self._sum[fid][None])[0] @ mean) >= self.gate:  # the same person after all
                for earlier in self._doubt.pop(box_id)[:-1]:  # this frame's embedding is added by the caller
                    self._sum[fid] = self._sum[fid] + earlier
                    self._frames[fid] += 1
                return fid, False
            self.breaks += 1
        evidence = self._doubt.pop(box_id, [])[:-1]  # this frame's embedding is added by the caller
        fid, self._next = self._next, self._next + 1
        self._face[box_id] = fid
        if evidence:
            self._sum[fid], self._frames[fid] = np.sum(evidence, axis=0), len(evidence)
        return fid, False

    def decide(self, track_ids: np.ndarray, embeddings: np.ndarray, templates) -> tuple[np.ndarray, list, list, np.ndarray]:
        """(face-track ids, names, nearest names, similarities of each face track's mean embedding, or of the
        frame's own for a face in doubt) for this frame's tracked faces (``track_ids``: the box tracker's ids)."""
        self._frame += 1
        fids, doubtful = [], []
        for tid, e in zip(track_ids.tolist(), embeddings):
            fid, doubt = self._face_id(tid, e)
            if not doubt:
                self._sum[fid] = self._sum.get(fid, 0) + e
                self._frames[fid] = self._frames.get(fid, 0) + 1
            self._seen[fid] = self._frame
            fids.append(fid)
            doubtful.append(doubt)
        self._forget()
        ids = np.asarray(fids, np.int64)
        if not fids:
            return ids, [], [], np.zeros(0, np.float32)
        means = l2_normalize(
            np.stack([e if doubt else self._sum[f] for f, e, doubt in zip(fids, embeddings, doubtful)]).astype(np.float32)
        )
        names, nearest, sims = identify(means, templates, self.threshold)
        out = []
        for fid, name, doubt in zip(fids, names, doubtful):
            if doubt:  # maybe not this track's person: matched on its own, as an untracked face is
                out.append(name)
                continue
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
            self._doubt.pop(tid, None)
