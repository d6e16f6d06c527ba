"""Detector outputs -> ``Detections``: score threshold, class-aware NMS on the device, boxes mapped back to
frame pixels. The graph already decodes anchors (edgecv exports ``boxes`` (1, N, 4) xyxy in model-input pixels
and ``scores`` (1, N, C)), so nothing here depends on how the detector was built."""

from __future__ import annotations

import cv2
import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.results import Detections
from edgecv.runtime.postprocess import register_postprocess


def nms_xyxy(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float,
             max_det: int = 300) -> np.ndarray:
    """Indices kept by class-aware greedy NMS, best score first (OpenCV's C++ ``NMSBoxesBatched``)."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1).astype(np.float32)
    keep = cv2.dnn.NMSBoxesBatched(xywh, scores.astype(np.float32), class_ids.astype(np.int32), 0.0, float(iou),
                                   top_k=max_det)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")][:max_det]


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
