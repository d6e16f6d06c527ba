"""Box geometry and greedy matching for the tracker (``bytetrack.py``): IoU, the overlapping pairs of two box sets
(all at once for a few, a sort and sweep on x for many), and lowest-cost-first one-to-one matching."""

from __future__ import annotations

import numpy as np

_SWEEP = 4096  # overlap_iou: above this many box pairs, sort and sweep instead of comparing all (both measured)


def intersection(a: np.ndarray, b: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The intersection area of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), xyxy; ``dtype``."""
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    inter = np.minimum(a[:, None, 2], b[None, :, 2])
    inter -= np.maximum(a[:, None, 0], b[None, :, 0])
    np.maximum(inter, 0, out=inter)
    h = np.minimum(a[:, None, 3], b[None, :, 3])
    h -= np.maximum(a[:, None, 1], b[None, :, 1])
    np.maximum(h, 0, out=h)
    inter *= h
    return inter


def iou_matrix(a: np.ndarray, b: np.ndarray, dtype=np.float32) -> np.ndarray:
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), xyxy; ``dtype``, computed in place."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), dtype)
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    inter = intersection(a, b, dtype)
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None] + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union -= inter
    np.maximum(union, 1e-9, out=union)
    inter /= union
    return inter


def buffered(xyxy: np.ndarray, b: float) -> np.ndarray:
    """Boxes grown by ``b`` times their width and height on each side (C-BIoU's buffer)."""
    if not b:
        return xyxy
    wh = xyxy[:, 2:] - xyxy[:, :2]
    return np.concatenate([xyxy[:, :2] - b * wh, xyxy[:, 2:] + b * wh], 1)


def overlap_iou(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (i, j) of every box of ``a`` and of ``b`` (xyxy) that overlap, in row-major order, and their IoU
    (> 0): all the pairs that can match. Few boxes: all pairs compared at once. Many (``len(a) * len(b)`` over
    ``_SWEEP``): ``b`` sorted on x1 and swept (a box overlapping ``a[i]`` starts less than the widest box's width
    left of it, and before its end), so 1,000 objects cost a few thousand pairs, not a million.

    The sweep gathers rows with ``take`` and holds coordinates as columns: on these few hundred rows numpy's fancy
    indexing of a 2-D array costs 5-10x as much per call (numpy 2.4, measured), and this runs every frame."""
    if not len(a) or not len(b):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    if len(a) * len(b) <= _SWEEP:
        iou = iou_matrix(a, b, np.float64)
        i, j = np.nonzero(iou > 0)
        return i, j, iou[i, j]
    ac, bc = a.T, b.T
    order = bc[0].argsort(kind="stable")
    x1 = bc[0].take(order)
    lo = x1.searchsorted(ac[0] - float((bc[2] - bc[0]).max()), "right")
    count = x1.searchsorted(ac[2], "left")
    count -= lo
    np.maximum(count, 0, out=count)
    i = np.arange(len(a)).repeat(count)
    lo -= count.cumsum()
    lo += count
    j = order.take(np.arange(len(i)) + lo.repeat(count))
    A, B = ac.take(i, 1), bc.take(j, 1)
    wh = np.minimum(A[2:], B[2:])
    wh -= np.maximum(A[:2], B[:2])
    ok = ((wh[0] > 0) & (wh[1] > 0)).nonzero()[0]
    i, j = i.take(ok), j.take(ok)
    row_major = (i * len(b) + j).argsort(kind="stable")  # (i is sorted; within a row, j is not)
    i, j, ok = i.take(row_major), j.take(row_major), ok.take(row_major)
    inter = wh[0].take(ok) * wh[1].take(ok)
    union = ((ac[2] - ac[0]) * (ac[3] - ac[1])).take(i) + ((bc[2] - bc[0]) * (bc[3] - bc[1])).take(j)
    union -= inter
    return i, j, inter / np.maximum(union, 1e-9)


def greedy_pairs(rows: np.ndarray, cols: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs (``rows[k]``, ``cols[k]``) at ``cost[k]``, given in row-major order, matched one to one,
    lowest cost first (ties: the earlier pair).

    A pair that is the cheapest of its row and of its column is taken by the greedy order whatever else happens,
    so those are matched at once, vectorised; only the rows and columns left contend, one pair at a time. When no
    row and no column has two candidates, every pair is taken (in the order given)."""
    if not len(cost):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if np.bincount(rows).max() == 1 and np.bincount(cols).max() == 1:  # nothing contended: the common case
        return rows, cols
    order = np.argsort(cost, kind="stable")
    rows, cols = rows[order], cols[order]
    at = np.arange(len(rows))
    first_r = np.full(int(rows.max()) + 1, len(rows))  # each row's first, cheapest, pair; and each column's
    np.minimum.at(first_r, rows, at)
    first_c = np.full(int(cols.max()) + 1, len(rows))
    np.minimum.at(first_c, cols, at)
    mutual = (first_r[rows] == at) & (first_c[cols] == at)
    taken_r, taken_c = np.zeros(len(first_r), bool), np.zeros(len(first_c), bool)
    taken_r[rows[mutual]] = True
    taken_c[cols[mutual]] = True
    rest = (~taken_r[rows] & ~taken_c[cols]).nonzero()[0]
    if not len(rest):
        return rows[mutual], cols[mutual]
    keep = []
    for k in rest.tolist():
        r, c = rows[k], cols[k]
        if not taken_r[r] and not taken_c[c]:
            taken_r[r] = taken_c[c] = True
            keep.append(k)
    keep = np.asarray(keep, np.int64)
    return np.concatenate([rows[mutual], rows[keep]]), np.concatenate([cols[mutual], cols[keep]])


def greedy_match(cost: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a cost matrix matched one to one, lowest cost first, only pairs under ``limit``."""
    rows, cols = np.nonzero(cost < limit)
    return greedy_pairs(rows, cols, cost[rows, cols])


def group_owners(i: np.ndarray, j: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``ByteTracker.merge``'s grouping: the boxes ``i[k] < j[k]`` overlap; best box (``scores``) first, each box
    not yet taken takes itself and its neighbours not yet taken. Each box's owner (itself, for a box nobody took)."""
    n = len(scores)
    first = scores[i] >= scores[j]  # the better of each pair (ties: the lower index, as i < j)
    hi, lo = np.where(first, i, j), np.where(first, j, i)
    taken = np.bincount(lo, minlength=n)
    owner = np.arange(n)
    if taken[lo].max() == 1 and not taken[hi].any():  # the common case: each weaker box next to one better box
        owner[lo] = hi  # that nobody takes: what the loop below gives, at once
        return owner
    neighbours: dict[int, list[int]] = {}
    for a, b in zip(hi.tolist(), lo.tolist()):
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    owner[list(neighbours)] = -1
    for a in sorted(neighbours, key=lambda a: (-scores[a], a)):  # best first (ties: lower index)
        if owner[a] < 0:
            owner[a] = a
            for b in neighbours[a]:
                if owner[b] < 0:
                    owner[b] = a
    return owner
