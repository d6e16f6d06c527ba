"""Detector outputs -> ``Detections``: score threshold, class-aware NMS on the device, boxes mapped back to
frame pixels. The graph already decodes anchors (edgecv exports ``boxes`` (1, N, 4) xyxy in model-input pixels
and ``scores`` (1, N, C)), so nothing here depends on how the detector was built."""

from __future__ import annotations

import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.results import Detections
from edgecv.runtime.postprocess import register_postprocess


def nms_xyxy(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float,
             max_det: int = 300) -> np.ndarray:
    """Indices kept by class-aware greedy NMS, best score first (exactly torchvision's ``batched_nms``).

    Vectorised numpy: one pass per *kept* box over the boxes still standing, which shrink as they are
    suppressed (a detector's raw output is a few dense clusters, so the kept boxes are few). Classes never
    suppress each other: each class is shifted to its own region first (the coordinate-offset trick)."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes = xyxy[order].astype(np.float32)
    span = float(boxes.max() - min(float(boxes.min()), 0.0)) + 1.0
    boxes += (class_ids[order].astype(np.float32) * span)[:, None]
    x1, y1, x2, y2 = (np.ascontiguousarray(c) for c in boxes.T)
    area = (x2 - x1) * (y2 - y1)
    alive = np.arange(len(order))
    keep: list[int] = []
    while alive.size and len(keep) < max_det:
        i, rest = alive[0], alive[1:]
        keep.append(i)
        w = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
        h = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
        inter = np.maximum(w, 0) * np.maximum(h, 0)
        alive = rest[inter <= iou * (area[i] + area[rest] - inter)]  # IoU <= iou, without a division
    return order[np.asarray(keep, dtype=np.int64)]


def best_class(scores: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per box: the best class and its score, for boxes whose best score reaches ``conf``."""
    cls = scores.argmax(1)
    best = scores[np.arange(len(scores)), cls]
    idx = np.flatnonzero(best >= conf)
    return idx, cls[idx], best[idx]


@register_postprocess("detect")
def detect_postprocess(outputs: list[np.ndarray], meta: ArtifactMeta, conf: float = 0.25, iou: float = 0.45,
                       transform=None, **_) -> Detections:
    boxes, scores = outputs[0][0], outputs[1][0]
    idx, cls, best = best_class(scores, conf)
    keep = nms_xyxy(boxes[idx], best, cls, iou)
    xyxy = boxes[idx][keep].astype(np.float32)
    if transform is not None:
        xyxy = transform.to_frame(xyxy)
    labels = tuple(meta.labels[c] for c in cls[keep]) if meta.labels else ()
    return Detections(xyxy, best[keep].astype(np.float32), cls[keep].astype(np.int64), labels)
