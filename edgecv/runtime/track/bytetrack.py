"""ByteTrack (Zhang et al., ECCV 2022) for the device: numpy (and OpenCV for colours), class-aware, tracks as arrays.

Why our own: the maintained Python implementations pull scipy (~110 MB) and often the full ``opencv-python``
over the device's ``opencv-python-headless`` (supervision, trackers), or torch (boxmot, AGPL); a Pi's install is
numpy + OpenCV + one runtime. Per frame, the paper's steps (1-3, 5, 6) and one from C-BIoU (4):

0. boxes of other classes over a better box are merged into it (see Classes, below), and a box that covers most
   of a surer box of its class (``group_cover``; a tie is no evidence) and is larger (``group_area``) is taken as a
   low box, whatever its own score: the detector's box around a group, two or three objects one half over the
   other, which otherwise becomes a track of its own or takes the id of an object whose box it missed. As a low box
   it starts no track and only continues one it fits well (step 3), so an object partly hidden behind a smaller
   one of its class keeps its track (README: what each rule changed on ``benchmarks/tracking.py``);
1. every track (tracked and lost) is moved by its Kalman filter (``kalman.py``); as in ByteTrack's code, an
   unseen track's box stops growing or shrinking;
2. **high** boxes (score >= ``high``) are matched to tracked and lost tracks on IoU fused with the box score
   (cost 1 - IoU * score, accepted under ``match_cost``); a lost track that matches is found again, same id. A
   lost track's cost is raised by ``lost_cost``, DeepSORT's matching cascade (tracks seen last frame first) made
   soft: where a box fits a track seen last frame and a lost one about as well (two objects of one class, one just
   gone behind the other), it continues the one seen last frame (and a lost track needs IoU * score over 0.25, not
   0.2, to be found again here; step 4 still may). Given the frame, where a box fits two tracks about as well (or a
   track two boxes), the one it looks less like costs more (``appearance.py``: colours, the objects' own);
3. **low** boxes (``low`` <= score < ``high``: occluded, blurred objects) are matched to the tracks still
   unmatched that were tracked last frame, on IoU (accepted over 1 - ``low_match_cost``: 0.4, where ByteTrack
   takes 0.5, as the box of an object being covered shifts and shrinks away from its track's): the step that keeps
   ids through occlusions; tracks matched by neither become lost;
4. lost tracks still unmatched get the high boxes left on a *buffered* IoU (both boxes widened by
   ``recover_buffer`` of their size on each side; Yang et al., WACV 2023): an object that comes back from an
   occlusion off its predicted path (its velocity was learnt from the shrinking boxes of its disappearance) is
   found again instead of becoming a new object. The buffer is C-BIoU's larger one (half the box's size, IoU over
   0.2): on 12 of ``benchmarks/tracking.py``'s videos it kept more ids than the smaller one (0.3, IoU over 0.3).
   Given the frame, lost tracks still unmatched take a box of their class within reach that looks like them;
5. tentative tracks (born last frame) are matched to the high boxes left (cost under ``tentative_cost``) and
   confirmed, or removed. Given the frame, the matched tracks learn their colours, and every 10th frame one that
   has been in doubt and now follows a box that looks like another track (lost, or holding a box that looks like
   the first) exchanges identities with it: an id that motion carried across where boxes crossed goes back;
6. high boxes still left with score >= ``birth`` start tentative tracks, unless one overlaps a box matched this
   frame by IoU over ``birth_iou`` (a detector's second, offset box on an object already tracked, which would
   otherwise become a second track that trades the object with the first); lost tracks unseen for more than
   ``lost_frames`` frames are removed; of a tracked and a lost track overlapping by IoU > 0.85, the younger goes.

Matching is greedy (lowest cost first), not the optimal assignment of the paper's LAPJV: with one-to-one costs
under the thresholds the two agree except where two boxes are near-equally good for two tracks (tested against
scipy's ``linear_sum_assignment``). Costs are computed only for the pairs that overlap at all (``overlap_iou``,
one search per frame for the tracks' and the boxes' pairs: all pairs compared at once for a few boxes, a sort and
sweep on x for many): at 100 objects a few hundred pairs, not 100 x 100 costs per association. Per-frame arrays
are read with ``take`` / ``compress``, not fancy indexing (several times as costly per call at this size), and
masks tested with ``count_nonzero`` and ``nonzero``, not ``any`` and ``flatnonzero`` (numpy's Python wrappers: a
microsecond a call, and a frame makes some two hundred calls).

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
from edgecv.runtime.track.appearance import LookOptions, Looks
from edgecv.runtime.track.matching import buffered, greedy_pairs, group_owners, iou_matrix, overlap_iou

TENTATIVE, TRACKED, LOST = 0, 1, 2


@dataclass(frozen=True)
class TrackerOptions:
    high: float = 0.5  # detections at or above: first association, may start tracks
    low: float = 0.1  # detections between low and high: second association only
    birth: float = 0.6  # a high detection needs this score to start a track
    match_cost: float = 0.8  # first association: accept 1 - IoU * score under this
    lost_cost: float = 0.05  # first association: added to a lost track's cost (a near tie goes to a track seen)
    low_match_cost: float = 0.6  # second association: accept 1 - IoU under this (README: what each rule changed)
    tentative_cost: float = 0.7  # tentative tracks: accept 1 - IoU * score under this
    lost_frames: int = 90  # frames a lost track is kept to be found again (3 s at 30 fps; ByteTrack keeps 30)
    class_cost: float = 0.3  # added to a match's cost when the box's class is not the track's (inf: never match)
    recover_buffer: float = 0.5  # lost tracks: boxes widened by this share of their size on each side (C-BIoU's
    recover_cost: float = 0.8  # larger buffer), then matched to the high boxes left on 1 - buffered IoU under this
    birth_iou: float = 0.2  # a left-over box overlapping a box matched this frame by more starts no track
    merge_iou: float = 0.7  # boxes of other classes this much over a better box are that object (one box)
    group_cover: float = 0.7  # a box covering this share of a better box of its class, and at least
    group_area: float = 1.5  # this many times its area, is a group's box: a low box (group_cover 1: none is)
    tentative: bool = True  # new tracks wait for a second sighting before they are objects (False: at once)
    appearance: LookOptions | None = LookOptions()  # colours, where motion is in doubt (given the image; None: off)


class _Pairs(NamedTuple):
    """One frame's candidate (track, box) pairs and what matching them costs."""

    t: np.ndarray
    d: np.ndarray
    plain: np.ndarray  # 1 - IoU (+ class penalty)
    fused: np.ndarray  # 1 - IoU * score (+ class penalty)


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
        self.mean = np.zeros((2, 0, 4))  # the Kalman filters' (kalman.py): positions, velocities
        self.cov = np.zeros((3, 0, 4))
        self.born = 0  # confirmed tracks ever (what a count of objects would use)
        self.exchanged: list[tuple[int, int]] = []  # last update's pairs of ids put back on their objects (swapped)
        self._boxes = np.zeros((0, 4))  # this frame's predicted boxes
        self._cls = np.zeros(0, np.int64)  # and the tracks' classes, before its votes
        self.looks = Looks(self.o.appearance) if self.o.appearance else None

    def __len__(self) -> int:
        return int(np.sum(self.state != LOST))

    def classes(self, tracks: np.ndarray) -> np.ndarray:
        """The class of each of ``tracks``: the one its boxes voted for most."""
        return self.votes.take(tracks, 0).argmax(axis=1)

    def boxes(self) -> np.ndarray:
        """The tracks' predicted boxes (xyxy), in track order."""
        return kalman.xyah_to_xyxy(self.mean[0])

    def _pairs(
        self, t: np.ndarray, d: np.ndarray, iou: np.ndarray, index: np.ndarray, n: int, scores: np.ndarray, votes: np.ndarray
    ) -> _Pairs:
        """The overlapping (track, box) pairs ``t``, ``d`` (of the ``n`` boxes given; their IoU ``iou``) on the boxes
        ``merge`` kept (``index``, ascending), with their plain and score-fused costs (class penalty included; the
        fused one with ``lost_cost`` for lost tracks)."""
        if len(index) < n:  # boxes merged: the joined ones' pairs go (their owner has its own), the rest renumbered
            kept = np.empty(n, np.int64)
            kept.fill(-1)
            kept[index] = np.arange(len(index))
            d = kept[d]
            ok = d >= 0
            t, d, iou = t[ok], d[ok], iou[ok]
        penalty = self._penalty(t, d, votes)
        if self.looks is not None:
            penalty = penalty + self.looks.penalty(t, d, iou)
        fused = 1 - iou * scores[d] + penalty
        if self.o.lost_cost:
            fused += self.o.lost_cost * (self.state[t] == LOST)
        return _Pairs(t, d, 1 - iou + penalty, fused)

    def _penalty(self, t: np.ndarray, d: np.ndarray, votes: np.ndarray) -> np.ndarray | float:
        """``class_cost`` for each pair whose box has none of its track's class among its votes, else 0."""
        if not self.o.class_cost or not len(t):
            return 0.0
        k = votes.shape[1]  # (votes[d, cls[t]], read flat: 2-D fancy indexing costs several times as much)
        return np.where(votes.take(d * k + self._cls.take(t)) == 0, self.o.class_cost, 0.0)  # (inf * 0 would be nan)

    def _recover(self, tracks: np.ndarray, dets: np.ndarray, xyxy: np.ndarray, votes: np.ndarray):
        """Lost ``tracks`` matched to ``dets`` on the buffered IoU (C-BIoU); the matched tracks and boxes."""
        a = buffered(self._boxes.take(tracks, 0), self.o.recover_buffer)
        i, j, iou = overlap_iou(a, buffered(xyxy.take(dets, 0), self.o.recover_buffer))
        t, d = tracks[i], dets[j]
        cost = 1 - iou + self._penalty(t, d, votes)
        pick = (cost < self.o.recover_cost).nonzero()[0]
        t, d = greedy_pairs(t[pick], d[pick], cost[pick])
        if self.looks is None:
            return t, d
        rest_t, rest_d = np.ones(len(tracks), bool), np.ones(len(dets), bool)  # the rest: by colour (appearance.py)
        rest_t[np.searchsorted(tracks, t)], rest_d[np.searchsorted(dets, d)] = False, False  # (both sorted)
        tracks, dets = tracks[rest_t], dets[rest_d]
        lost_for = self.frame - self.last.take(tracks)
        t2, d2 = self.looks.reidentify(tracks, dets, self._boxes.take(tracks, 0), lost_for, votes, self._cls)
        return np.concatenate([t, t2]), np.concatenate([d, d2])

    def _match(self, pairs: _Pairs, tracks: np.ndarray, dets: np.ndarray, cost: np.ndarray, limit: float):
        """Greedy matching of the pairs between ``tracks`` and ``dets`` (boolean masks) with ``cost`` under ``limit``;
        the matched tracks and boxes."""
        if not np.count_nonzero(tracks) or not np.count_nonzero(dets):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pick = np.nonzero(tracks[pairs.t] & dets[pairs.d] & (cost < limit))[0]
        return greedy_pairs(pairs.t[pick], pairs.d[pick], cost[pick])

    def merge(self, xyxy: np.ndarray, scores: np.ndarray, cls: np.ndarray, pairs=None):
        """One box per object: boxes of other classes over a better box by IoU > ``merge_iou`` join it. Returns
        the kept boxes' indices (ascending), their scores (the noisy-OR of the joined boxes' scores: the chance
        that the object is of one of those classes, were the sigmoid scores independent; a group's box, see
        ``_groups``, just under ``high``) and their class votes (n, classes): the joined boxes' scores per class.
        ``pairs``: the boxes' ``overlap_iou`` with each other, when known."""
        if len(cls) and cls.max() >= self.votes.shape[1]:  # a class not seen before: a column for its votes
            self.votes = np.pad(self.votes, ((0, 0), (0, int(cls.max()) + 1 - self.votes.shape[1])))
        n, k = len(scores), self.votes.shape[1]
        votes = np.zeros((n, k))
        votes[np.arange(n), cls] = scores
        if n < 2:
            return np.arange(n), scores, votes
        i, j, iou = overlap_iou(xyxy, xyxy) if pairs is None else pairs
        once = i < j  # the pairs come both ways (and each box with itself): each once
        i, j, iou = i[once], j[once], iou[once]
        over = (cls[i] != cls[j]) & (iou > self.o.merge_iou)
        group = self._groups(xyxy, scores, cls, i, j, iou)
        if group is not None:  # a group's box is a low box (it joins no other, none joins it)
            over &= ~group[i] & ~group[j]
            scores = scores.copy()
            scores[group] = np.minimum(scores[group], np.nextafter(self.o.high, 0))
        if not np.count_nonzero(over):  # the common case: nothing to merge
            return np.arange(n), scores, votes
        owner = group_owners(i.compress(over), j.compress(over), scores)
        alone = owner == np.arange(n)
        joined = (~alone).nonzero()[0]
        to = owner.take(joined)
        np.add.at(votes, to, votes.take(joined, 0))
        miss = np.log1p(-np.minimum(scores, 1 - 1e-9))
        np.add.at(miss, to, miss.take(joined))
        scores = scores.copy()
        scores[to] = 1 - np.exp(miss.take(to))
        keep = alone.nonzero()[0]
        return keep, scores.take(keep), votes.take(keep, 0)

    def _groups(self, xyxy, scores, cls, i, j, iou) -> np.ndarray | None:
        """The groups' boxes (a mask; None: none): a box that covers ``group_cover`` of a better box of its class and
        is ``group_area`` times as large, the detector's box around two or three objects one half over the other.
        Boxes of like size are the NMS's to judge (two objects crossing). The pairs ``i < j`` overlap by ``iou``."""
        if self.o.group_cover >= 1 or not len(i):
            return None
        same = cls[i] == cls[j]
        if not np.count_nonzero(same):
            return None
        i, j, iou = i[same], j[same], iou[same]
        area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
        first = scores[i] >= scores[j]
        better, weaker = np.where(first, i, j), np.where(first, j, i)  # of each pair (a tie: see below)
        inter = iou * (area[i] + area[j]) / (1 + iou)  # from IoU = inter / (a + b - inter)
        covers = inter >= self.o.group_cover * np.maximum(area[better], 1e-9)
        covers &= area[weaker] >= self.o.group_area * area[better]
        covers &= scores[weaker] < scores[better]  # a tie (common in int8's few score levels) is no evidence
        if not np.count_nonzero(covers):
            return None
        group = np.zeros(len(scores), bool)
        group[weaker[covers]] = True
        return group

    def update(self, xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, image: np.ndarray | None = None) -> Tracked:
        """The detections that belong to confirmed tracks this frame (indices, ascending), their track ids and
        the tracks' classes."""
        o = self.o
        self.frame += 1
        self.exchanged = []
        xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        cls = np.asarray(class_ids, np.int64).reshape(-1)
        self.mean[1, :, 3][self.state != TRACKED] = 0  # as ByteTrack: an unseen track's box stops growing or shrinking
        kalman.predict(self.mean, self.cov)
        self._boxes = self.boxes()
        # one search for the overlapping pairs: tracks' boxes with the boxes, and the boxes with each other
        n_t, n = len(self._boxes), len(xyxy)
        every = np.concatenate([self._boxes, xyxy])
        a, b, iou = overlap_iou(every, xyxy)
        k = int(np.searchsorted(a, n_t))  # row-major: the tracks' pairs, then the boxes' with each other
        index, scores, votes = self.merge(xyxy, scores, cls, (a[k:] - n_t, b[k:], iou[k:]))
        xyxy = xyxy.take(index, 0)
        if self.looks is not None:
            self.looks.frame(image, xyxy)
        self._cls = self.votes.argmax(axis=1)  # the tracks' classes before this frame's votes
        pairs = self._pairs(a[:k], b[:k], iou[:k], index, n, scores, votes)
        is_high = scores >= o.high
        tracks, dets, free_track, free_det = self._associate(pairs, is_high, scores, xyxy, votes)
        self.state[(self.state == TRACKED) & free_track] = LOST
        if len(tracks):
            kalman.update(self.mean, self.cov, kalman.xyxy_to_xyah(xyxy.take(dets, 0)), tracks)
            self.born += int(np.count_nonzero(self.state[tracks] == TENTATIVE))
            self.state[tracks] = TRACKED
            self.last[tracks] = self.frame
            if self.looks is not None:  # (a track that follows another object takes its identity back first)
                for a, b in self.looks.mistaken(tracks, dets, self.frame, self.state == LOST):
                    self._swap(a, b)
                self.looks.learn(tracks, dets, self.frame, is_high)
            self.votes[tracks] += votes.take(dets, 0)
        order = dets.argsort(kind="stable")
        report = index[dets[order]], self.ids[tracks[order]], self.classes(tracks[order])

        keep = ~((self.state == TENTATIVE) & free_track)  # tentative and not seen again: a false start
        keep &= ~((self.state == LOST) & (self.frame - self.last > o.lost_frames))
        new = (is_high & free_det & (scores >= o.birth)).nonzero()[0]
        if len(new) and len(dets):  # a second box on an object matched this frame is not a new object
            new = new[iou_matrix(xyxy[new], xyxy[dets]).max(axis=1) <= o.birth_iou]
        self._prune(keep)
        new_ids, new_cls = self._birth(new, xyxy, votes)
        self._drop_duplicates()
        if (self.frame == 1 or not o.tentative) and len(new):  # confirmed, and reported, at once
            d = np.concatenate([report[0], index[new]])
            order = np.argsort(d, kind="stable")
            return Tracked(d[order], np.concatenate([report[1], new_ids])[order], np.concatenate([report[2], new_cls])[order])
        return Tracked(*report)

    def _associate(self, pairs: _Pairs, is_high: np.ndarray, scores: np.ndarray, xyxy: np.ndarray, votes: np.ndarray):
        """Steps 2-5 of the module docstring: the matched (tracks, boxes), in that order of steps, and the tracks and
        boxes left unmatched."""
        o = self.o
        free_det = is_high.copy()
        t1, d1 = self._match(pairs, self.state != TENTATIVE, free_det, pairs.fused, o.match_cost)
        free_det[d1] = False
        free_track = np.ones(len(self.ids), bool)
        free_track[t1] = False
        is_low = ~is_high & (scores >= o.low)
        t2, d2 = self._match(pairs, (self.state == TRACKED) & free_track, is_low, pairs.plain, o.low_match_cost)
        free_track[t2] = False
        lost = (self.state == LOST) & free_track
        # C-BIoU: lost tracks and the high boxes left, on their widened boxes
        if np.count_nonzero(lost) and np.count_nonzero(free_det):
            t4, d4 = self._recover(lost.nonzero()[0], free_det.nonzero()[0], xyxy, votes)
        else:
            t4 = d4 = np.zeros(0, np.int64)
        free_det[d4] = False
        free_track[t4] = False
        t3, d3 = self._match(pairs, self.state == TENTATIVE, free_det, pairs.fused, o.tentative_cost)
        free_det[d3] = False
        free_track[t3] = False
        return np.concatenate([t1, t2, t4, t3]), np.concatenate([d1, d2, d4, d3]), free_track, free_det

    def _swap(self, a: int, b: int) -> None:
        """Tracks ``a`` and ``b`` exchange identities (id, class votes, age, colours); each keeps its motion and box. The
        ids go on ``exchanged``: what was said of one id since the objects traded belongs to the other (a zone's
        dwell, the side of a line: ``analytics.py``'s ``exchange``)."""
        self.exchanged.append((int(self.ids[a]), int(self.ids[b])))
        for name in ("ids", "votes", "start"):
            values = getattr(self, name)
            values[[a, b]] = values[[b, a]]
        if self.looks is not None:
            self.looks.swap(a, b)

    def _prune(self, keep: np.ndarray) -> None:
        if np.count_nonzero(keep) == len(keep):
            return
        for name in ("ids", "votes", "state", "last", "start"):
            setattr(self, name, getattr(self, name).compress(keep, axis=0))
        self.mean, self.cov = self.mean.compress(keep, axis=1), self.cov.compress(keep, axis=1)
        if self.looks is not None:
            self.looks.keep(keep)

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
        self.mean = np.concatenate([self.mean, mean], axis=1)
        self.cov = np.concatenate([self.cov, cov], axis=1)
        if self.looks is not None:
            self.looks.add(n)
        return ids, cls

    def _drop_duplicates(self) -> None:
        """A tracked and a lost track on the same object (IoU > 0.85): the one that lived shorter goes."""
        is_lost = self.state == LOST
        if not np.count_nonzero(is_lost):
            return
        tracked, lost = (self.state == TRACKED).nonzero()[0], is_lost.nonzero()[0]
        if not len(tracked):
            return
        boxes = self.boxes()
        pairs = np.argwhere(iou_matrix(boxes.take(tracked, 0), boxes.take(lost, 0)) > 0.85)
        if not len(pairs):
            return
        keep = np.ones(len(self.ids), bool)
        for a, b in pairs:
            t, lo = tracked[a], lost[b]
            age_t, age_l = self.frame - self.start[t], self.last[lo] - self.start[lo]
            keep[lo if age_t > age_l else t] = False
        self._prune(keep)
