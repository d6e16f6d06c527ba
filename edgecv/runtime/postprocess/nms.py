"""Greedy class-aware NMS on the device, without torch, exact: the boxes kept are those greedy NMS keeps taking
boxes by score, ties to the lower index (onnxruntime's rule; torchvision's ``batched_nms`` keeps the same set).

onnxruntime's C++ NonMaxSuppression kernel does the work, one batch row per class, so a box is only ever compared
with kept boxes of its own class (numpy when onnxruntime is absent). The kernel compares each box with the kept
boxes one by one and heap-sorts every box, so a large set (10k proposals) runs in two passes instead: NMS over the
best ``_STAGE_TOP`` boxes first, whose kept boxes are certain to be kept in the full run; every other box that one
of them overlaps by more than ``iou`` is suppressed in the full run too (and a suppressed box never suppresses
another), so it is dropped before the second, full pass over what is left. A box is tested only against the few
kept boxes a coarse grid puts near it, not against all of them; a box the test misses just stays for the second
pass, so the shortcut decides nothing the full run would not (tests/runtime/test_nms.py, benchmarks/nms.py)."""

from __future__ import annotations

import functools
import importlib
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_NMS_GRAPH = Path(__file__).with_name("nms.onnx")  # one NonMaxSuppression node (scripts/make_nms_onnx.py)
_STAGE_MIN = 3000  # sets larger than this run in two passes (below it one pass is faster: benchmarks/nms.py)
_STAGE_TOP = 1000  # boxes the first pass runs on
_GRID = 32  # cells per side of the grid that finds each box its likely suppressors
_ZONE = 0.25  # a kept box claims the cells within this fraction of its size around its centre
_TRIES = 8  # kept boxes a box is tested against at most (the rest of a crowded cell is left to the second pass)
_MARGIN = 1e-5  # a box is dropped early only if its IoU clears ``iou`` by this much (float rounding)
_NO_SCORE = np.array([np.finfo(np.float32).min], np.float32)  # the kernel's score_threshold: passes every score


@functools.lru_cache(maxsize=1)
def _ort_nms():
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        log.info("onnxruntime is not installed: NMS runs in numpy (slower on large box sets)")
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.log_severity_level = 1, 3
    return ort.InferenceSession(str(_NMS_GRAPH), opts, providers=["CPUExecutionProvider"])


def _offset_by_class(xyxy: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Shift each class to its own region so one class-agnostic pass never lets two classes suppress each
    other (the coordinate-offset trick torchvision's ``batched_nms`` uses)."""
    boxes = xyxy.astype(np.float32)
    span = float(boxes.max() - min(float(boxes.min()), 0.0)) + 1.0
    return boxes + (class_ids.astype(np.float32) * span)[:, None]


def _intersection(cols: np.ndarray, a, b) -> np.ndarray:
    """Intersection areas of boxes ``a`` and ``b`` (indices, slices or a scalar index) of ``cols`` = x1, y1, x2, y2."""
    x1, y1, x2, y2 = cols
    w = np.minimum(x2[a], x2[b]) - np.maximum(x1[a], x1[b])
    h = np.minimum(y2[a], y2[b]) - np.maximum(y1[a], y1[b])
    return np.maximum(w, 0) * np.maximum(h, 0)


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    """Greedy NMS in numpy: one pass per kept box over the boxes still standing (the reference and the
    fallback where onnxruntime is absent)."""
    order = np.argsort(-scores, kind="stable")
    cols = boxes[order].T.copy()
    area = (cols[2] - cols[0]) * (cols[3] - cols[1])
    alive = np.arange(len(order))
    keep: list[int] = []
    while alive.size and len(keep) < max_det:
        i, rest = alive[0], alive[1:]
        keep.append(i)
        inter = _intersection(cols, i, rest)
        alive = rest[inter <= iou * (area[i] + area[rest] - inter)]  # IoU <= iou, without a division
    return order[np.asarray(keep, dtype=np.int64)]


def _greedy(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    """Indices greedy NMS keeps, per class (at most ``max_det`` per class), in no particular order."""
    session = _ort_nms()
    if session is None:
        return nms_numpy(_offset_by_class(boxes, class_ids), scores, iou, max_det)
    per_class = np.bincount(class_ids)
    present = np.flatnonzero(per_class)
    counts = per_class[present]
    starts = np.cumsum(counts) - counts
    width = int(counts.max())
    order = None
    if len(present) == 1:
        rows, row_scores = boxes[None], scores[None, None]
    else:  # one row per class, padded with scores the kernel's score_threshold drops
        row = np.zeros(len(per_class), np.int16 if len(present) < 2**15 else np.int64)  # int16 sorts by radix
        row[present] = np.arange(len(present))
        row = row[class_ids]
        order = np.argsort(row, kind="stable")
        r, col = row[order], np.arange(len(scores)) - np.repeat(starts, counts)
        rows = np.zeros((len(present), width, 4), np.float32)
        rows[r, col] = boxes[order]
        row_scores = np.full((len(present), 1, width), -np.inf, np.float32)
        row_scores[r, 0, col] = scores[order]
    selected = session.run(
        None,
        {
            "boxes": rows,
            "scores": row_scores,
            "max_output_boxes_per_class": np.array([max_det], np.int64),
            "iou_threshold": np.array([iou], np.float32),
            "score_threshold": _NO_SCORE,
        },
    )[0]
    return selected[:, 2] if order is None else order[starts[selected[:, 0]] + selected[:, 2]]


def _prune(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, kept: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes left once every box that a ``kept`` box (one the full run certainly keeps) of its class
    and a higher score overlaps by more than ``iou`` is dropped. A box is tested only against the kept boxes whose
    zones (grid cells near their centres) hold its centre, one zone at a time, smallest first."""
    lo, hi = float(boxes.min()), float(boxes.max())
    size = boxes[kept, 2:] - boxes[kept, :2]
    positive = (size[:, 0] > 0) & (size[:, 1] > 0)
    kept, size = kept[positive], size[positive]
    if not (np.isfinite(lo) and np.isfinite(hi) and len(kept)):
        return np.arange(len(scores))
    f, side = _GRID / (hi - lo + 1e-6), _GRID + 1
    centre = (boxes[kept, :2] + boxes[kept, 2:]) * 0.5
    c0 = np.clip(((centre - size * _ZONE - lo) * f).astype(np.int64), 0, _GRID)
    span = np.clip(((centre + size * _ZONE - lo) * f).astype(np.int64) + 1, 1, side) - c0
    cells = span[:, 0] * span[:, 1]
    by_size = np.argsort(cells, kind="stable")
    rep = np.repeat(by_size, cells[by_size])  # one entry per (kept box, cell of its zone), smallest zones first
    local = np.arange(len(rep)) - np.repeat(np.cumsum(cells[by_size]) - cells[by_size], cells[by_size])
    classes, slot = np.unique(class_ids[kept], return_inverse=True)
    keys = (slot[rep] * side + c0[rep, 1] + local // span[rep, 0]) * side + c0[rep, 0] + local % span[rep, 0]
    claims = np.bincount(keys, minlength=(len(classes) + 1) * side * side)  # last class slot: classes kept nowhere
    first, found = np.cumsum(claims) - claims, kept[rep[np.argsort(keys, kind="stable")]]
    class_slot = np.full(int(class_ids.max()) + 1, len(classes), np.int64)
    class_slot[classes] = np.arange(len(classes))

    cols = boxes.T.copy()
    x1, y1, x2, y2 = cols
    area = (x2 - x1) * (y2 - y1)

    def suppressed(j: np.ndarray | slice, cand: np.ndarray) -> np.ndarray:  # cand ahead of j, IoU > iou + margin
        inter = _intersection(cols, j, cand)
        return (scores[cand] > scores[j]) & (inter > 0) & (inter > (iou * (1 + _MARGIN)) * (area[j] + area[cand] - inter))

    cx = np.clip(((x1 + x2) * 0.5 - lo) * f, 0, _GRID).astype(np.int64)
    cy = np.clip(((y1 + y2) * 0.5 - lo) * f, 0, _GRID).astype(np.int64)
    query = (class_slot[class_ids] * side + cy) * side + cx
    # every box against the first kept box claiming its cell (a box in an unclaimed cell is tested, never dropped)
    first_claim = found[np.minimum(first[query], len(found) - 1)]
    alive = np.flatnonzero(~((claims[query] > 0) & suppressed(slice(None), first_claim)))
    for k in range(1, min(int(claims.max()), _TRIES)):  # the boxes left against the k-th kept box of their cell
        q = query[alive]
        test = claims[q] > k
        test[test] = suppressed(alive[test], found[first[q[test]] + k])
        alive = alive[~test]
    return alive


def nms_xyxy(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float, max_det: int = 300) -> np.ndarray:
    """Indices kept by class-aware greedy NMS over ``xyxy`` boxes with class indices ``class_ids`` (0..C-1), best
    score first (ties: lower index first); boxes scored NaN or -inf are never kept. On 2 CPU cores here ~0.07 ms
    at 1k boxes and ~0.65-0.8 ms at 10k, 2-8x faster than torchvision (benchmarks/nms.py)."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    boxes = np.ascontiguousarray(xyxy, np.float32)
    scores = np.ascontiguousarray(scores, np.float32)
    class_ids = np.asarray(class_ids, np.int64)
    if class_ids.min() < 0:
        raise ValueError(f"class ids must be >= 0, got {class_ids.min()}")
    valid = scores > _NO_SCORE[0]
    if not valid.all():
        idx = np.flatnonzero(valid)
        return idx[nms_xyxy(boxes[idx], scores[idx], class_ids[idx], iou, max_det)]
    if len(scores) <= _STAGE_MIN:
        keep = _greedy(boxes, scores, class_ids, iou, max_det)
    else:
        top = np.sort(np.argpartition(-scores, _STAGE_TOP - 1)[:_STAGE_TOP])
        kept = top[_greedy(boxes[top], scores[top], class_ids[top], iou, max_det)]
        # a box scored above every box outside the first pass was decided by the boxes inside it alone
        kept = kept[scores[kept] > scores[top].min()]
        alive = _prune(boxes, scores, class_ids, kept, iou)
        keep = alive[_greedy(boxes[alive], scores[alive], class_ids[alive], iou, max_det)]
    keep = np.sort(keep)
    return keep[np.argsort(-scores[keep], kind="stable")][:max_det]
