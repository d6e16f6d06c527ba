"""Detector outputs -> ``Detections``: score threshold, class-aware NMS on the device, boxes mapped back to
frame pixels. The graph already decodes anchors (edgecv exports ``boxes`` (1, N, 4) xyxy in model-input pixels
and ``scores`` (1, N, C)), so nothing here depends on how the detector was built."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.results import Detections
from edgecv.runtime.postprocess._registry import register_postprocess
from edgecv.runtime.postprocess.nms import nms_xyxy


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
    best = float(outputs[1][0].max()) if outputs[1].size else 0.0
    return best if best >= conf else 0.0


@register_postprocess("detect", DetectOptions, Detections, confidence=max_score)
def detect_postprocess(outputs: list[np.ndarray], meta: ArtifactMeta, conf: float = 0.25, iou: float = 0.45,
                       transform=None, max_det: int = 300) -> Detections:
    boxes, scores = outputs[0][0], outputs[1][0]
    if len(outputs) > 2 and (meta.decoder or {}).get("nms_in_graph"):  # the graph ran NMS: (batch, class, box) rows
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
