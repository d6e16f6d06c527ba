"""ByteTrack (Zhang et al., ECCV 2022) for the device: numpy only, class-aware, tracks held as arrays.

Why our own: the maintained Python implementations pull scipy (~110 MB) and often the full ``opencv-python``
over the device's ``opencv-python-headless`` (supervision, trackers), or torch (boxmot, AGPL); a Pi's install is
numpy + OpenCV + one runtime. What is kept from the paper, per frame:

1. every track (tracked and lost) is moved by its Kalman filter (``kalman.py``);
2. **high** boxes (score >= ``high``) are matched to tracked and lost tracks on IoU fused with the box score
   (cost 1 - IoU * score, accepted under ``match_cost``); a lost track that matches is found again, same id;
3. **low** boxes (``low`` <= score < ``high``: occluded, blurred objects) are matched to the tracks still
   unmatched that were tracked last frame, on IoU (accepted over 1 - ``low_match_cost``): the step that keeps ids
   through occlusions; tracks matched by neither become lost;
4. tentative tracks (born last frame) are matched to the high boxes left (cost under ``tentative_cost``) and
   confirmed, or removed;
5. high boxes still left with score >= ``birth`` start tentative tracks; lost tracks unseen for more than
   ``lost_frames`` frames are removed; of a tracked and a lost track overlapping by IoU > 0.85, the younger goes.

Matching is greedy (lowest cost first), not the optimal assignment of the paper's LAPJV: with one-to-one costs
under the thresholds the two agree except where two boxes are near-equally good for two tracks (tested against
scipy's ``linear_sum_assignment``). Classes never match each other (``class_aware``). Only confirmed tracks matched
this frame are reported, each with an id that is a positive int, never a sentinel (``update`` returns them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import edgecv.runtime.track.kalman as kalman

TENTATIVE, TRACKED, LOST = 0, 1, 2


@dataclass(frozen=True)
class TrackerOptions:
    high: float = 0.5  # detections at or above: first association, may start tracks
    low: float = 0.1  # detections between low and high: second association only
    birth: float = 0.6  # a high detection needs this score to start a track
    match_cost: float = 0.8  # first association: accept 1 - IoU * score under this
    low_match_cost: float = 0.5  # second association: accept 1 - IoU under this
    tentative_cost: float = 0.7  # tentative tracks: accept 1 - IoU * score under this
    lost_frames: int = 30  # frames a lost track is kept to be found again
    class_aware: bool = True
    tentative: bool = True  # new tracks wait for a second sighting before they are objects (False: at once)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), xyxy."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def greedy_match(cost: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns matched one to one, lowest cost first, only pairs under ``limit``."""
    rows, cols = np.nonzero(cost < limit)
    if not len(rows):
        return rows, cols
    order = np.argsort(cost[rows, cols], kind="stable")
    used_r, used_c, keep = set(), set(), []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            keep.append(k)
    keep = np.asarray(keep, np.int64)
    return rows[keep], cols[keep]


class ByteTracker:
    """``update(xyxy, scores, class_ids)`` per frame -> (indices of the detections reported, their track ids)."""

    def __init__(self, options: TrackerOptions | None = None):
        self.o = options or TrackerOptions()
        self.frame = 0
        self._next_id = 1
        self.ids = np.zeros(0, np.int64)
        self.cls = np.zeros(0, np.int64)
        self.state = np.zeros(0, np.int8)
        self.last = np.zeros(0, np.int64)  # frame of the last match
        self.start = np.zeros(0, np.int64)
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 3, 4))
        self.born = 0  # confirmed tracks ever (what a count of objects would use)
        self._boxes = np.zeros((0, 4))  # this frame's predicted boxes

    def __len__(self) -> int:
        return int(np.sum(self.state != LOST))

    def boxes(self) -> np.ndarray:
        """The tracks' predicted boxes (xyxy), in track order."""
        return kalman.xyah_to_xyxy(self.mean[:, :4])

    def _cost(self, tracks: np.ndarray, dets: np.ndarray, xyxy, scores, cls, fuse: bool) -> np.ndarray:
        iou = iou_matrix(self._boxes[tracks], xyxy[dets])
        cost = 1 - iou * (scores[dets][None, :] if fuse else 1.0)
        if self.o.class_aware:
            cost[self.cls[tracks][:, None] != cls[dets][None, :]] = np.inf
        return cost

    def _match(self, tracks, dets, xyxy, scores, cls, fuse, limit):
        if not len(tracks) or not len(dets):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        r, c = greedy_match(self._cost(tracks, dets, xyxy, scores, cls, fuse), limit)
        return tracks[r], dets[c]

    def update(self, xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the detections that belong to confirmed tracks this frame (ascending) and their track ids."""
        o = self.o
        self.frame += 1
        xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64)
        cls = np.asarray(class_ids, np.int64) if o.class_aware else np.zeros(len(scores), np.int64)
        self.mean, self.cov = kalman.predict(self.mean, self.cov)
        self._boxes = self.boxes()
        is_high = scores >= o.high
        high, low = np.flatnonzero(is_high), np.flatnonzero(~is_high & (scores >= o.low))

        t1, d1 = self._match(np.flatnonzero(self.state != TENTATIVE), high, xyxy, scores, cls, True, o.match_cost)
        free_det = np.ones(len(scores), bool)
        free_det[d1] = False
        free_track = np.ones(len(self.ids), bool)
        free_track[t1] = False
        still = np.flatnonzero((self.state == TRACKED) & free_track)
        t2, d2 = self._match(still, low, xyxy, scores, cls, False, o.low_match_cost)
        free_track[t2] = False
        tentative = np.flatnonzero(self.state == TENTATIVE)
        left_high = high[free_det[high]]
        t3, d3 = self._match(tentative, left_high, xyxy, scores, cls, True, o.tentative_cost)
        free_det[d3] = False
        free_track[t3] = False

        tracks, dets = np.concatenate([t1, t2, t3]), np.concatenate([d1, d2, d3])
        if len(tracks):
            self.mean[tracks], self.cov[tracks] = kalman.update(self.mean[tracks], self.cov[tracks],
                                                                kalman.xyxy_to_xyah(xyxy[dets]))
            self.born += int(np.sum(self.state[tracks] == TENTATIVE))
            self.state[tracks] = TRACKED
            self.last[tracks] = self.frame
        self.state[(self.state == TRACKED) & free_track] = LOST
        order = np.argsort(dets, kind="stable")
        report = dets[order], self.ids[tracks[order]]

        keep = ~((self.state == TENTATIVE) & free_track)  # tentative and not seen again: a false start
        keep &= ~((self.state == LOST) & (self.frame - self.last > o.lost_frames))
        new = np.flatnonzero(is_high & free_det & (scores >= o.birth))
        self._prune(keep)
        new_ids = self._birth(new, xyxy, cls)
        self._drop_duplicates()
        if (self.frame == 1 or not o.tentative) and len(new):  # confirmed, and reported, at once
            d = np.concatenate([report[0], new])
            order = np.argsort(d, kind="stable")
            return d[order], np.concatenate([report[1], new_ids])[order]
        return report

    def _prune(self, keep: np.ndarray) -> None:
        for name in ("ids", "cls", "state", "last", "start", "mean", "cov"):
            setattr(self, name, getattr(self, name)[keep])

    def _birth(self, dets: np.ndarray, xyxy: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """New tracks for ``dets``; their ids."""
        if not len(dets):
            return np.zeros(0, np.int64)
        mean, cov = kalman.initiate(kalman.xyxy_to_xyah(xyxy[dets]))
        n = len(dets)
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        # the first frame's objects are confirmed at once (there is no earlier frame to wait for)
        at_once = self.frame == 1 or not self.o.tentative
        state = np.full(n, TRACKED if at_once else TENTATIVE, np.int8)
        if at_once:
            self.born += n
        self.ids = np.concatenate([self.ids, ids])
        self.cls = np.concatenate([self.cls, cls[dets]])
        self.state = np.concatenate([self.state, state])
        self.last = np.concatenate([self.last, np.full(n, self.frame, np.int64)])
        self.start = np.concatenate([self.start, np.full(n, self.frame, np.int64)])
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        return ids

    def _drop_duplicates(self) -> None:
        """A tracked and a lost track on the same object (IoU > 0.85): the one that lived shorter goes."""
        tracked, lost = np.flatnonzero(self.state == TRACKED), np.flatnonzero(self.state == LOST)
        if not len(tracked) or not len(lost):
            return
        boxes = self.boxes()
        pairs = np.argwhere(iou_matrix(boxes[tracked], boxes[lost]) > 0.85)
        if not len(pairs):
            return
        keep = np.ones(len(self.ids), bool)
        for a, b in pairs:
            t, lo = tracked[a], lost[b]
            age_t, age_l = self.frame - self.start[t], self.last[lo] - self.start[lo]
            keep[lo if age_t > age_l else t] = False
        self._prune(keep)
