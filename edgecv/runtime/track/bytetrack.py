"""ByteTrack (Zhang et al., ECCV 2022) for the device: numpy only, class-aware, tracks held as arrays.

Why our own: the maintained Python implementations pull scipy (~110 MB) and often the full ``opencv-python``
over the device's ``opencv-python-headless`` (supervision, trackers), or torch (boxmot, AGPL); a Pi's install is
numpy + OpenCV + one runtime. Per frame, the paper's steps (1-3, 5, 6) and one from C-BIoU (4):

0. boxes of other classes over a better box are merged into it (see Classes, below);
1. every track (tracked and lost) is moved by its Kalman filter (``kalman.py``); as in ByteTrack's code, an
   unseen track's box stops growing or shrinking;
2. **high** boxes (score >= ``high``) are matched to tracked and lost tracks on IoU fused with the box score
   (cost 1 - IoU * score, accepted under ``match_cost``); a lost track that matches is found again, same id;
3. **low** boxes (``low`` <= score < ``high``: occluded, blurred objects) are matched to the tracks still
   unmatched that were tracked last frame, on IoU (accepted over 1 - ``low_match_cost``): the step that keeps ids
   through occlusions; tracks matched by neither become lost;
4. lost tracks still unmatched get the high boxes left on a *buffered* IoU (both boxes widened by
   ``recover_buffer`` of their size on each side; Yang et al., WACV 2023): an object that comes back from an
   occlusion off its predicted path (its velocity was learnt from the shrinking boxes of its disappearance) is
   found again instead of becoming a new object;
5. tentative tracks (born last frame) are matched to the high boxes left (cost under ``tentative_cost``) and
   confirmed, or removed;
6. high boxes still left with score >= ``birth`` start tentative tracks, unless one overlaps a box matched this
   frame by IoU over ``birth_iou`` (a detector's second, offset box on an object already tracked, which would
   otherwise become a second track that trades the object with the first); lost tracks unseen for more than
   ``lost_frames`` frames are removed; of a tracked and a lost track overlapping by IoU > 0.85, the younger goes.

Matching is greedy (lowest cost first), not the optimal assignment of the paper's LAPJV: with one-to-one costs
under the thresholds the two agree except where two boxes are near-equally good for two tracks (tested against
scipy's ``linear_sum_assignment``).

Classes: a track's class is the vote of its boxes (their scores summed per class), so one frame's flicker between
two classes neither renames nor splits it; a box of another class than the track's may still continue it, at an
extra ``class_cost`` (``inf``: classes never match; 0: classes ignored). A detector's per-class NMS leaves one box
per class on an object it is unsure of (0.3 "star", 0.3 "cross", 0.2 "triangle"): before matching, boxes that
overlap a better box by IoU over ``merge_iou`` join it (``merge``), as one box whose score is the noisy-OR of
theirs and whose class votes are theirs, so the object is neither lost for want of one confident class nor
tracked twice. Only confirmed tracks matched this frame are reported, each with an id that is a positive int,
never a sentinel, and the track's class (``update`` returns them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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
    class_cost: float = 0.3  # added to a match's cost when the box's class is not the track's (inf: never match)
    recover_buffer: float = 0.3  # lost tracks: boxes widened by this share of their size on each side, then
    recover_cost: float = 0.7  # matched to the high boxes left on 1 - IoU under this (C-BIoU's buffered IoU)
    birth_iou: float = 0.3  # a left-over box overlapping a box matched this frame by more starts no track
    merge_iou: float = 0.7  # boxes of other classes this much over a better box are that object (one box)
    tentative: bool = True  # new tracks wait for a second sighting before they are objects (False: at once)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), xyxy; float32, computed in place (a third
    of the time of the plain float64 expression at 100 x 100, which the tracker's budget needs)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    inter = np.minimum(a[:, None, 2], b[None, :, 2])
    inter -= np.maximum(a[:, None, 0], b[None, :, 0])
    np.maximum(inter, 0, out=inter)
    h = np.minimum(a[:, None, 3], b[None, :, 3])
    h -= np.maximum(a[:, None, 1], b[None, :, 1])
    np.maximum(h, 0, out=h)
    inter *= h
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None] + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union -= inter
    np.maximum(union, 1e-9, out=union)
    inter /= union
    return inter


def _buffered(xyxy: np.ndarray, b: float) -> np.ndarray:
    """Boxes grown by ``b`` times their width and height on each side (C-BIoU's buffer)."""
    if not b:
        return xyxy
    wh = xyxy[:, 2:] - xyxy[:, :2]
    return np.concatenate([xyxy[:, :2] - b * wh, xyxy[:, 2:] + b * wh], 1)


def greedy_match(cost: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns matched one to one, lowest cost first, only pairs under ``limit``.

    A pair that is each other's cheapest (row and column) is taken by the greedy order whatever else happens, so
    those are matched at once, vectorised; only the rows and columns left contend, one pair at a time."""
    if not cost.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    best_c, best_r = np.argmin(cost, axis=1), np.argmin(cost, axis=0)
    all_r = np.arange(cost.shape[0])
    mutual = (best_r[best_c] == all_r) & (cost[all_r, best_c] < limit)
    r1, c1 = all_r[mutual], best_c[mutual]
    free_r = np.ones(cost.shape[0], bool)
    free_r[r1] = False
    free_c = np.ones(cost.shape[1], bool)
    free_c[c1] = False
    rows, cols = np.nonzero((cost < limit) & free_r[:, None] & free_c[None, :])
    if not len(rows):
        return r1, c1
    order = np.argsort(cost[rows, cols], kind="stable")
    used_r, used_c, keep = set(), set(), []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            keep.append(k)
    keep = np.asarray(keep, np.int64)
    return np.concatenate([r1, rows[keep]]), np.concatenate([c1, cols[keep]])


class Tracked(NamedTuple):
    """One frame's reported objects: detection indices (ascending), their track ids and the tracks' classes."""

    index: np.ndarray
    ids: np.ndarray
    class_ids: np.ndarray


class ByteTracker:
    """``update(xyxy, scores, class_ids)`` per frame -> ``Tracked`` (the detections reported, ids, classes)."""

    def __init__(self, options: TrackerOptions | None = None):
        self.o = options or TrackerOptions()
        self.frame = 0
        self._next_id = 1
        self.ids = np.zeros(0, np.int64)
        self.votes = np.zeros((0, 1))  # per track, the scores of its boxes summed per class
        self.state = np.zeros(0, np.int8)
        self.last = np.zeros(0, np.int64)  # frame of the last match
        self.start = np.zeros(0, np.int64)
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 3, 4))
        self.born = 0  # confirmed tracks ever (what a count of objects would use)
        self._boxes = np.zeros((0, 4))  # this frame's predicted boxes

    def __len__(self) -> int:
        return int(np.sum(self.state != LOST))

    def classes(self, tracks: np.ndarray) -> np.ndarray:
        """The class of each of ``tracks``: the one its boxes voted for most."""
        return np.argmax(self.votes[tracks], axis=1)

    def boxes(self) -> np.ndarray:
        """The tracks' predicted boxes (xyxy), in track order."""
        return kalman.xyah_to_xyxy(self.mean[:, :4])

    def _cost(self, tracks: np.ndarray, dets: np.ndarray, xyxy, scores, votes, fuse: bool,
              buffer: float = 0.0) -> np.ndarray:
        iou = iou_matrix(_buffered(self._boxes[tracks], buffer), _buffered(xyxy[dets], buffer))
        cost = 1 - iou * (scores[dets][None, :] if fuse else 1.0)
        if self.o.class_cost:  # none of the box's classes is the track's
            cost[votes[dets][:, self.classes(tracks)].T == 0] += self.o.class_cost
        return cost

    def _match(self, tracks, dets, xyxy, scores, votes, fuse, limit, buffer=0.0):
        if not len(tracks) or not len(dets):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        r, c = greedy_match(self._cost(tracks, dets, xyxy, scores, votes, fuse, buffer), limit)
        return tracks[r], dets[c]

    def merge(self, xyxy: np.ndarray, scores: np.ndarray, cls: np.ndarray):
        """One box per object: boxes of other classes over a better box by IoU > ``merge_iou`` join it. Returns
        the kept boxes' indices (ascending), their scores (the noisy-OR of the joined boxes' scores: the chance
        that the object is of one of those classes, were the sigmoid scores independent) and their class votes
        (n, classes): the joined boxes' scores per class."""
        if len(cls) and cls.max() >= self.votes.shape[1]:  # a class not seen before: a column for its votes
            self.votes = np.pad(self.votes, ((0, 0), (0, int(cls.max()) + 1 - self.votes.shape[1])))
        n, k = len(scores), self.votes.shape[1]
        votes = np.zeros((n, k))
        votes[np.arange(n), cls] = scores
        if n < 2 or self.o.merge_iou >= 1 or not (cls != cls[0]).any():  # one class: nothing to merge
            return np.arange(n), scores, votes
        over = (iou_matrix(xyxy, xyxy) > self.o.merge_iou) & (cls[:, None] != cls[None, :])
        involved = np.flatnonzero(over.any(axis=1))
        if not len(involved):  # the common case: nothing to merge
            return np.arange(n), scores, votes
        owner = np.arange(n)  # a box over no other is its own
        owner[involved] = -1
        for i in involved[np.argsort(-scores[involved], kind="stable")]:
            if owner[i] < 0:
                owner[i] = i
                owner[over[i] & (owner < 0)] = i
        keep, group = np.unique(owner, return_inverse=True)
        m = len(keep)
        merged = np.stack([np.bincount(group, votes[:, j], m) for j in range(k)], axis=1)
        miss = np.bincount(group, np.log1p(-np.minimum(scores, 1 - 1e-9)), m)
        return keep, 1 - np.exp(miss), merged

    def update(self, xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> Tracked:
        """The detections that belong to confirmed tracks this frame (indices, ascending), their track ids and
        the tracks' classes."""
        o = self.o
        self.frame += 1
        xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        cls = np.asarray(class_ids, np.int64).reshape(-1)
        index, scores, votes = self.merge(xyxy, scores, cls)
        xyxy = xyxy[index]
        self.mean[self.state != TRACKED, 7] = 0  # as ByteTrack: an unseen track's box stops growing or shrinking
        self.mean, self.cov = kalman.predict(self.mean, self.cov)
        self._boxes = self.boxes()
        is_high = scores >= o.high
        high, low = np.flatnonzero(is_high), np.flatnonzero(~is_high & (scores >= o.low))

        t1, d1 = self._match(np.flatnonzero(self.state != TENTATIVE), high, xyxy, scores, votes, True, o.match_cost)
        free_det = np.ones(len(scores), bool)
        free_det[d1] = False
        free_track = np.ones(len(self.ids), bool)
        free_track[t1] = False
        still = np.flatnonzero((self.state == TRACKED) & free_track)
        t2, d2 = self._match(still, low, xyxy, scores, votes, False, o.low_match_cost)
        free_track[t2] = False
        lost = np.flatnonzero((self.state == LOST) & free_track)
        t4, d4 = self._match(lost, high[free_det[high]], xyxy, scores, votes, False, o.recover_cost, o.recover_buffer)
        free_det[d4] = False
        free_track[t4] = False
        tentative = np.flatnonzero(self.state == TENTATIVE)
        left_high = high[free_det[high]]
        t3, d3 = self._match(tentative, left_high, xyxy, scores, votes, True, o.tentative_cost)
        free_det[d3] = False
        free_track[t3] = False

        tracks, dets = np.concatenate([t1, t2, t4, t3]), np.concatenate([d1, d2, d4, d3])
        if len(tracks):
            self.mean[tracks], self.cov[tracks] = kalman.update(self.mean[tracks], self.cov[tracks],
                                                                kalman.xyxy_to_xyah(xyxy[dets]))
            self.born += int(np.sum(self.state[tracks] == TENTATIVE))
            self.state[tracks] = TRACKED
            self.last[tracks] = self.frame
            self.votes[tracks] += votes[dets]
        self.state[(self.state == TRACKED) & free_track] = LOST
        order = np.argsort(dets, kind="stable")
        report = index[dets[order]], self.ids[tracks[order]], self.classes(tracks[order])

        keep = ~((self.state == TENTATIVE) & free_track)  # tentative and not seen again: a false start
        keep &= ~((self.state == LOST) & (self.frame - self.last > o.lost_frames))
        new = np.flatnonzero(is_high & free_det & (scores >= o.birth))
        if len(new) and len(dets):  # a second box on an object matched this frame is not a new object
            new = new[iou_matrix(xyxy[new], xyxy[dets]).max(axis=1) <= o.birth_iou]
        self._prune(keep)
        new_ids, new_cls = self._birth(new, xyxy, votes)
        self._drop_duplicates()
        if (self.frame == 1 or not o.tentative) and len(new):  # confirmed, and reported, at once
            d = np.concatenate([report[0], index[new]])
            order = np.argsort(d, kind="stable")
            return Tracked(d[order], np.concatenate([report[1], new_ids])[order],
                           np.concatenate([report[2], new_cls])[order])
        return Tracked(*report)

    def _prune(self, keep: np.ndarray) -> None:
        for name in ("ids", "votes", "state", "last", "start", "mean", "cov"):
            setattr(self, name, getattr(self, name)[keep])

    def _birth(self, dets: np.ndarray, xyxy: np.ndarray, votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks for ``dets``; their ids and classes."""
        if not len(dets):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        mean, cov = kalman.initiate(kalman.xyxy_to_xyah(xyxy[dets]))
        n = len(dets)
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        # the first frame's objects are confirmed at once (there is no earlier frame to wait for)
        at_once = self.frame == 1 or not self.o.tentative
        state = np.full(n, TRACKED if at_once else TENTATIVE, np.int8)
        if at_once:
            self.born += n
        cls = np.argmax(votes[dets], axis=1)
        self.ids = np.concatenate([self.ids, ids])
        self.votes = np.concatenate([self.votes, votes[dets]])
        self.state = np.concatenate([self.state, state])
        self.last = np.concatenate([self.last, np.full(n, self.frame, np.int64)])
        self.start = np.concatenate([self.start, np.full(n, self.frame, np.int64)])
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        return ids, cls

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
