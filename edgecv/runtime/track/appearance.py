"""What each tracked object looks like: its colours apart from its background, for ``bytetrack.py`` to tell two
objects apart where their boxes alone cannot.

The feature is a background-weighted colour histogram (Comaniciu, Ramesh & Meer, "Kernel-based object tracking",
PAMI 2003): the HSV histogram of the box less that of a ring around it (``ring`` of the box's size on each side),
negative bins dropped, scaled to unit length. A box is mostly background for a thin or hollow object, and that
background changes as the object moves; what the box holds beyond its surroundings is the object. On 6 of
``benchmarks/tracking.py``'s videos (whole objects, 30 frames apart), the same object scores a cosine of 0.93 or
more (5th percentile), two objects 0 at the median and over 0.8 in 8% of pairs (colours in one bin); a plain
histogram of the box's middle: 0.81 and, for two objects, 0.93 at the 95th percentile. Read on a ``grid`` x
``grid`` lattice over box and ring, not pixel by pixel, so a box costs the same at any resolution.

The tracker uses it only where motion is in doubt: a box that two tracks could take or a track that two boxes
could continue (a penalty of ``weight`` x (1 - cosine) on the match), and a lost track that the buffered IoU
could not find again (a box of its class within reach with cosine over ``reid``: DeepSORT's appearance matching
of lost tracks, kept near where the object was). A track learns its colours from boxes no other matched box
covers and that are at least the tracking score (``high``: a box the detector doubts is mostly an object partly
hidden, by something no box marks, whose colours would be the cover's), as a running mean: on its first match,
then every ``every`` frames while another box is near it (colours change slowly, and where no other object is near,
none can be taken for it). At 100 objects, every box's histogram on every frame would cost more than the rest of
the tracker.

Where boxes cross, motion can still carry a track onto the other object (two that meet and turn back, or one that
hides behind another just as the other steps into its path) and, once the boxes part, nothing is in doubt any more:
by boxes alone the track follows the wrong object for good. So on those learning frames, a track that has been in
doubt since it was last checked, and whose box is clear, is checked (``mistaken``): if its box looks unlike it
and like another track that is lost, or like one that holds a box looking like the first, the two exchange
identities. A trade put right counts as switches too, and is worth them: the ids last (README: what it changed on
``benchmarks/tracking.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edgecv.runtime.track.matching import buffered, greedy_pairs, intersection

BINS = (8, 4, 4)  # hue, saturation, value
SIZE = BINS[0] * BINS[1] * BINS[2]
# each HSV channel's part of a pixel's bin (OpenCV's 8-bit hue runs to 179), summed over the channels
_BIN = np.stack(
    [
        np.minimum(np.arange(256) * BINS[0] // 180, BINS[0] - 1) * (BINS[1] * BINS[2]),
        np.arange(256) * BINS[1] // 256 * BINS[2],
        np.arange(256) * BINS[2] // 256,
    ],
    axis=1,
).astype(np.uint8)[:, None, :]
_SUM = np.ones((1, 3))


def colours(image: np.ndarray, xyxy: np.ndarray, ring: float = 0.3, grid: int = 12) -> np.ndarray:
    """The background-weighted colour histogram (n, 128) of each box of ``image`` (BGR, uint8), unit rows; a row
    of zeros where nothing in the box stands out from its ring."""
    import cv2

    n = len(xyxy)
    if not n:
        return np.zeros((0, SIZE), np.float32)
    h, w = image.shape[:2]
    xyxy = np.asarray(xyxy, np.float64)
    t, ring_of = _lattice(ring, grid)
    corner = xyxy[:, :2, None]
    at = np.floor(corner + (xyxy[:, 2:, None] - corner) * t).astype(np.int64)  # (n, 2, grid): xs, ys
    xs, ys = at[:, 0], at[:, 1]
    valid = None
    if at.min() < 0 or xs.max() >= w or ys.max() >= h:  # a ring past the frame's edge: those samples left out
        valid = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]
        xs, ys = np.minimum(np.maximum(xs, 0), w - 1), np.minimum(np.maximum(ys, 0), h - 1)
    at = ys[:, :, None] * w + xs[:, None, :]
    pixels = image.reshape(-1, 3).take(at.ravel(), axis=0).reshape(n * grid, grid, 3)
    bins = cv2.transform(cv2.LUT(cv2.cvtColor(pixels, cv2.COLOR_BGR2HSV), _BIN), _SUM).reshape(n, grid, grid)
    key = (np.arange(n) * (2 * SIZE))[:, None, None] + ring_of + bins  # the box's bins, then its ring's
    counts = np.bincount(key.ravel() if valid is None else key[valid], minlength=n * 2 * SIZE).reshape(n, 2, SIZE)
    total = np.maximum(counts.sum(axis=2), 1)
    # the box's share less the ring's, bin by bin, times both totals (the scale goes with the unit length)
    out = np.maximum(counts[:, 0] * total[:, 1:] - counts[:, 1] * total[:, :1], 0).astype(np.float32)
    out /= np.maximum(np.sqrt(np.einsum("ij,ij->i", out, out)), 1e-12)[:, None]
    return out


@lru_cache(maxsize=8)
def _lattice(ring: float, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Where ``colours`` samples a box (``grid`` positions, in box sizes from its corner, over box and ring) and,
    per sample of the ``grid`` x ``grid`` lattice, the offset of its histogram: 0 in the box, ``SIZE`` in the ring."""
    t = (np.arange(grid) + 0.5) / grid * (1 + 2 * ring) - ring
    inside = (t >= 0) & (t < 1)
    t.flags.writeable = False
    ring_of = np.where(inside[:, None] & inside[None, :], 0, SIZE)
    ring_of.flags.writeable = False
    return t, ring_of


@dataclass(frozen=True)
class LookOptions:
    weight: float = 0.3  # a doubtful match's cost: + weight x (1 - cosine of the box's colours and the track's)
    reid: float = 0.8  # a lost track takes a box of its class with a cosine over this, within reach
    reach: float = 0.3  # reach: the box's size, and this share of it per frame the track has been lost (README)
    learn: float = 0.1  # a track's colours: running mean, this weight to the new box's
    every: int = 10  # frames between lessons (the first on a track's first match; if its box is covered, a turn)
    doubt_iou: float = 0.2  # pairs this far apart are not in doubt (no match takes them: bytetrack.py's costs)
    cover: float = 0.05  # a box another matched box covers more of than this teaches nothing
    unlike: float = 0.5  # a track whose clear box has a cosine under this with it may be following another object


class Looks:
    """Each track's colours (unit rows; zeros: none learnt yet), and this frame's boxes' colours, computed once and
    only for the boxes asked about."""

    def __init__(self, options: LookOptions | None = None):
        self.o = options or LookOptions()
        self.models = np.zeros((0, SIZE), np.float32)
        self.tried = np.zeros(0, bool)  # a track has had its first lesson (it may have found nothing to learn)
        self.mixed = np.zeros(0, bool)  # a track has been in doubt since it was last checked (``mistaken``)
        self._image: np.ndarray | None = None
        self._boxes = np.zeros((0, 4))
        self._feats: np.ndarray | None = None
        self._done: np.ndarray | None = None

    def frame(self, image: np.ndarray | None, xyxy: np.ndarray) -> None:
        """This frame's image (None: no appearance this frame) and boxes."""
        self._image, self._boxes = image, xyxy
        self._feats = self._done = None  # (n, 128) and (n,), on the first ask

    def features(self, d: np.ndarray) -> np.ndarray:
        """The colours of boxes ``d`` (computed on first ask)."""
        if self._feats is None:
            self._feats, self._done = np.zeros((len(self._boxes), SIZE), np.float32), np.zeros(len(self._boxes), bool)
        need = np.zeros(len(self._done), bool)
        need[d] = True
        todo = (need & ~self._done).nonzero()[0]  # (d's boxes not read yet, each once)
        if len(todo):
            self._feats[todo] = colours(self._image, self._boxes.take(todo, 0))
            self._done[todo] = True
        return self._feats.take(d, 0)

    def similarity(self, t: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Cosine of track ``t``'s colours and box ``d``'s, pairwise; nan where either has none."""
        feats = self.features(d)
        models = self.models.take(t, 0)
        sim = np.einsum("ij,ij->i", models, feats)
        known = models.any(axis=1) & feats.any(axis=1)
        return np.where(known, sim, np.nan)

    def penalty(self, t: np.ndarray, d: np.ndarray, iou: np.ndarray) -> np.ndarray | float:
        """The match cost added to each (track ``t``, box ``d``) pair that motion leaves in doubt, for tracks that
        have colours: a box that two tracks fit about as well (IoU within ``weight`` of its best, and over
        ``doubt_iou``), or a track that two boxes do. Elsewhere colours could not change the match."""
        if self._image is None or not len(t):
            return 0.0
        near = (iou > self.o.doubt_iou).nonzero()[0]
        tn, dn = t.take(near), d.take(near)
        shared = ((np.bincount(tn).take(tn) > 1) | (np.bincount(dn).take(dn) > 1)).nonzero()[0]
        if not len(shared):  # no track near two boxes, no box near two tracks
            return 0.0
        near, tn, dn, iou = near.take(shared), tn.take(shared), dn.take(shared), iou.take(near.take(shared))
        self.mixed[tn] = True
        either = [a or b for a, b in zip(_close(tn, iou, self.o.weight), _close(dn, iou, self.o.weight))]
        doubt = near.compress(either)  # (a handful of pairs)
        doubt = doubt[self._has(t.take(doubt))]
        if not len(doubt):
            return 0.0
        out = np.zeros(len(t))
        sim = self.similarity(t.take(doubt), d.take(doubt))
        out[doubt] = self.o.weight * (1 - np.where(np.isnan(sim), 1.0, sim))  # no colours: no penalty
        return out

    def reidentify(
        self,
        tracks: np.ndarray,
        dets: np.ndarray,
        predicted: np.ndarray,
        lost_for: np.ndarray,
        votes: np.ndarray,
        cls: np.ndarray,
    ):
        """Lost ``tracks`` (their predicted boxes, frames lost, classes ``cls[tracks]``) matched to boxes ``dets`` by
        colour: cosine over ``reid``, centres within reach, the track's class among the box's ``votes``; greedy, most
        alike first."""
        if self._image is None or not len(tracks) or not len(dets):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        has = self._has(tracks)
        if not np.count_nonzero(has):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        tracks, predicted, lost_for = tracks[has], predicted[has], lost_for[has]
        t, d = np.repeat(np.arange(len(tracks)), len(dets)), np.tile(dets, len(tracks))
        p, b = predicted.take(t, 0), self._boxes.take(d, 0)
        gap = np.hypot(p[:, 0] + p[:, 2] - b[:, 0] - b[:, 2], p[:, 1] + p[:, 3] - b[:, 1] - b[:, 3]) / 2
        size = np.maximum(p[:, 2] - p[:, 0], p[:, 3] - p[:, 1])
        near = (gap < size * (1 + self.o.reach * lost_for.take(t))) & (votes[d, cls.take(tracks.take(t))] > 0)
        t, d = tracks.take(t[near]), d[near]
        sim = np.nan_to_num(self.similarity(t, d), nan=-1.0)
        ok = sim > self.o.reid
        return greedy_pairs(t[ok], d[ok], 1 - sim[ok])

    def mistaken(self, tracks: np.ndarray, dets: np.ndarray, frame: int, lost: np.ndarray) -> list[tuple[int, int]]:
        """On learning turns (every ``every``-th frame), the matched ``tracks`` (boxes ``dets``) that took another
        object's box where boxes crossed and have followed it since: of the tracks in doubt since their last turn,
        one whose clear box looks unlike it (cosine under ``unlike``) and most like another track (over ``reid``)
        goes with that track if it is lost (``lost``: a mask of all tracks); or, of the tracks it looks like (over
        ``reid``, most alike first), with the first that holds a box looking like the first track and unlike itself
        (two objects that traded tracks; the most alike may be a third object of like colours, tracked where it
        should be). The pairs whose identities to exchange (``ByteTracker._swap``, which calls ``swap``)."""
        if self._image is None or frame % self.o.every or not len(tracks):
            return []
        ask = (self.mixed.take(tracks) & self._has(tracks)).nonzero()[0]
        ask = ask[self._clear(dets, ask)]
        if not len(ask):
            return []
        tracks, feats = tracks.take(ask), self.features(dets.take(ask))
        own = np.einsum("ij,ij->i", self.models.take(tracks, 0), feats)
        wrong = (own < self.o.unlike).nonzero()[0]
        slot = {int(a): k for k, a in enumerate(tracks.tolist())}
        swaps: list[tuple[int, int]] = []
        done: set[int] = set()
        for k in wrong.tolist():  # (the common case: none; every track looks like its box)
            a = int(tracks[k])
            if a in done:
                continue
            sim = self.models @ feats[k]
            sim[a] = -1
            for rank, b in enumerate(np.argsort(-sim, kind="stable").tolist()):
                if sim[b] <= self.o.reid:
                    break
                j = slot.get(b)
                traded = j is not None and own[j] < self.o.unlike and self.models[a] @ feats[j] > self.o.reid
                if b not in done and (traded or (rank == 0 and lost[b])):
                    swaps.append((a, b))
                    done |= {a, b}
                    break
        return swaps

    def learn(self, tracks: np.ndarray, dets: np.ndarray, frame: int, sure: np.ndarray) -> None:
        """Matched ``tracks`` learn from their boxes ``dets``, where no other matched box covers theirs and the box is
        ``sure`` (a mask of this frame's boxes, the tracker's high ones: a track whose box is not tries again): a
        track on its first match, and on every ``every``-th frame the tracks another box is near (within their box's
        size: where a mix-up can come; all at once, one call rather than ``every``) or that were in doubt since the
        last turn (whose doubt the turn ends: ``mistaken`` has looked at them)."""
        if self._image is None or not len(tracks):
            return
        turn = frame % self.o.every == 0
        due = (~self.tried.take(tracks) | turn).nonzero()[0]
        if not len(due):  # (most frames: only a track's first match teaches between turns)
            return
        due = due.compress(sure.take(dets.take(due)))
        if not len(due):
            return
        clear = self._clear(dets, due)
        boxes = self._boxes.take(dets, 0)
        near = intersection(buffered(boxes.take(due, 0), 1.0), boxes)  # within the box's size
        near[np.arange(len(due)), due] = 0  # not itself
        tracks, dets = tracks.take(due), dets.take(due)
        self.tried[tracks] = True  # (a track whose box is not clear tries again on the next turn)
        mixed = self.mixed.take(tracks) & clear
        if turn:
            self.mixed[tracks[mixed]] = False
        fresh = ~self._has(tracks) | (near.max(axis=1) > 0) | mixed
        t, d = tracks[clear & fresh], dets[clear & fresh]
        if not len(t):
            return
        new = self.features(d)
        old = self.models.take(t, 0)
        mix = np.where(old.any(axis=1, keepdims=True), (1 - self.o.learn) * old + self.o.learn * new, new)
        mix /= np.maximum(np.linalg.norm(mix, axis=1, keepdims=True), 1e-12)
        seen = new.any(axis=1)
        self.models[t[seen]] = mix[seen]

    def _clear(self, dets: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Whether each of the matched boxes ``dets[rows]`` is clear of the others ``dets`` (none covers more than
        ``cover`` of it): a box whose colours are its object's alone."""
        boxes = self._boxes.take(dets, 0)
        mine = boxes.take(rows, 0)
        inter = intersection(mine, boxes)
        inter[np.arange(len(rows)), rows] = 0  # not itself
        return inter.max(axis=1, initial=0) <= self.o.cover * np.prod(mine[:, 2:] - mine[:, :2], axis=1)

    def swap(self, a: int, b: int) -> None:
        """Tracks ``a`` and ``b`` exchange colours and first lessons (what goes with an identity; whether a track
        was in doubt goes with its box, and stays)."""
        self.models[[a, b]] = self.models[[b, a]]
        self.tried[[a, b]] = self.tried[[b, a]]

    def _has(self, t: np.ndarray) -> np.ndarray:
        """Whether tracks ``t`` have colours (a row of zeros: none learnt yet)."""
        return self.models.take(t, 0).any(axis=1)

    def keep(self, mask: np.ndarray) -> None:
        self.models, self.tried, self.mixed = self.models.compress(mask, 0), self.tried.compress(mask), self.mixed.compress(mask)

    def add(self, n: int) -> None:
        self.models = np.concatenate([self.models, np.zeros((n, SIZE), np.float32)])
        self.tried = np.concatenate([self.tried, np.zeros(n, bool)])
        self.mixed = np.concatenate([self.mixed, np.zeros(n, bool)])


def _close(k: np.ndarray, iou: np.ndarray, margin: float) -> list[bool]:
    """Of the pairs of ``k`` (tracks or boxes), those whose IoU is within ``margin`` of the best of their ``k``'s,
    where that ``k`` has two such pairs or more. In plain Python: ``penalty`` asks about a handful of pairs (5 on
    average at 100 objects), where each numpy call would cost more than the loop."""
    ks, ious = k.tolist(), iou.tolist()
    best: dict[int, float] = {}
    for a, v in zip(ks, ious):
        if v > best.get(a, -1.0):
            best[a] = v
    close = [v >= best[a] - margin for a, v in zip(ks, ious)]
    count: dict[int, int] = {}
    for a, c in zip(ks, close):
        if c:
            count[a] = count.get(a, 0) + 1
    return [c and count[a] > 1 for a, c in zip(ks, close)]
