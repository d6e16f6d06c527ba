"""Detector outputs -> ``Detections``: score threshold, class-aware NMS on the device, boxes mapped back to
frame pixels. edgecv's own graphs already decode anchors (``boxes`` (1, N, 4) xyxy in model-input pixels and
``scores`` (1, N, C)); an imported model's output layout (``decoder.type``, see ``LAYOUTS``) is first turned into
that same pair, so the rest of the runtime, and export's fidelity report, never depend on how a detector was built.

Imported layouts:
  - ``yolo``: Ultralytics YOLOv8/11 (and v5u/v9/v12) ``[1, 4 + nc, N]``: cx, cy, w, h in input pixels, then one
    score per class (already sigmoid; no objectness). NMS here, as for edgecv's own.
  - ``yolo-e2e``: the end-to-end head of YOLOv10 / YOLO26 ``[1, K, 6]``: x1, y1, x2, y2, score, class id; one box
    per object already (no NMS; the rows are passed on as the selection, as with in-graph NMS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.results import Detections
from edgecv.runtime.postprocess._registry import register_postprocess
from edgecv.runtime.postprocess.nms import nms_xyxy


def _yolo(outputs: list, meta: ArtifactMeta) -> list:
    """``[B, 4 + nc, N]`` (or ``[B, N, 4 + nc]`` with ``decoder.transposed``) -> boxes (B, N, 4) xyxy, scores (B, N, nc)."""
    y = np.asarray(outputs[0], np.float32)
    if not meta.decoder.transposed:
        y = y.transpose(0, 2, 1)
    cxcy, wh = y[..., :2], y[..., 2:4]
    return [np.concatenate([cxcy - wh / 2, cxcy + wh / 2], -1), np.ascontiguousarray(y[..., 4:])]


def _yolo_e2e(outputs: list, meta: ArtifactMeta) -> list:
    """``[B, K, 6]`` -> boxes (B, K, 4), one-hot scores (B, K, nc), and the selection ``(batch, class, row)`` of every
    row (one array per image when B > 1), as in-graph NMS gives it."""
    y = np.asarray(outputs[0], np.float32)
    nc = len(meta.labels)
    cls = np.clip(np.rint(y[..., 5]).astype(np.int64), 0, nc - 1)
    scores = np.zeros((*y.shape[:2], nc), np.float32)
    np.put_along_axis(scores, cls[..., None], y[..., 4:5], -1)
    rows = np.arange(y.shape[1])
    selected = [np.stack([np.zeros_like(rows), c, rows], 1) for c in cls]
    return [np.ascontiguousarray(y[..., :4]), scores, selected[0] if len(selected) == 1 else selected]


LAYOUTS = {"yolo": _yolo, "yolo-e2e": _yolo_e2e}  # decoder.type -> raw outputs to (boxes, scores[, selection])


def canonical_outputs(outputs: list, meta: ArtifactMeta) -> list:
    """Raw outputs (batch first) in edgecv's own (boxes, scores[, selection]) form, whatever the model's layout."""
    kind = meta.decoder.type
    return LAYOUTS[kind](outputs, meta) if kind in LAYOUTS else outputs


def best_class(scores: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per box: the best class and its score, for boxes whose best score reaches ``conf``."""
    cls = scores.argmax(1)
    best = scores[np.arange(len(scores)), cls]
    idx = np.flatnonzero(best >= conf)
    return idx, cls[idx], best[idx]


@dataclass(frozen=True)
class DetectOptions:
    conf: float = 0.25  # score threshold
    iou: float = 0.45  # NMS IoU threshold
    max_det: int = 300  # boxes per frame at most (per class in NMS)


def max_score(outputs: list[np.ndarray], conf: float) -> float:
    """The frame's best box score among boxes reaching ``conf`` (0 when none does): ``Detections.confidence`` after
    that filter (NMS never removes the best box), for the drift monitor, whatever ``--conf`` the device runs."""
    scores = outputs[1]
    best = float(scores[0].max()) if scores.size else 0.0
    return best if best >= conf else 0.0


@register_postprocess("detect", DetectOptions, Detections, confidence=max_score, canonical=canonical_outputs)
def detect_postprocess(
    outputs: list[np.ndarray], meta: ArtifactMeta, conf: float = 0.25, iou: float = 0.45, transform=None, max_det: int = 300
) -> Detections:
    """``outputs``: canonical (``canonical_outputs``); the registry's call converts raw ones first."""
    boxes, scores = outputs[0][0], outputs[1][0]
    if len(outputs) > 2:  # (batch, class, box) rows the graph chose (in-graph NMS, an end-to-end head)
        sel = outputs[2][outputs[2][:, 0] == 0]
        sc = scores[sel[:, 2], sel[:, 1]]
        order = np.argsort(-sc, kind="stable")
        order = order[sc[order] >= conf][:max_det]
        xyxy, best, cls = boxes[sel[order, 2]].astype(np.float32), sc[order], sel[order, 1]
        keep = np.arange(len(order))
    else:
        idx, cls, best = best_class(scores, conf)
        keep = nms_xyxy(boxes[idx], best, cls, iou, max_det)
        xyxy = boxes[idx][keep].astype(np.float32)
    if transform is not None:
        xyxy = transform.to_frame(xyxy)
    labels = tuple(meta.labels[c] for c in cls[keep]) if meta.labels else ()
    return Detections(xyxy, best[keep].astype(np.float32), cls[keep].astype(np.int64), labels)
