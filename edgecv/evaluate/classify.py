"""Classification metrics from scores, numpy only (the export fidelity report reuses them)."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """cm[true, predicted] counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels.astype(np.int64), pred.astype(np.int64)), 1)
    return cm


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, kth=k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def classification_metrics(scores: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """top-1, top-5, per-class precision/recall/F1/support and the confusion matrix."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    pred = scores.argmax(1) if len(labels) else np.zeros(0, np.int64)
    cm = confusion_matrix(pred, labels, len(classes))
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1)
    predicted = cm.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(
            precision + np.nan_to_num(recall) > 0,
            2 * precision * np.nan_to_num(recall) / (precision + np.nan_to_num(recall)),
            0.0,
        )
    per_class = {
        name: {
            "precision": round(float(precision[i]), 4),
            "recall": None if np.isnan(recall[i]) else round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    }
    return {
        "n": int(len(labels)),
        "top1": topk_accuracy(scores, labels, 1),
        "top5": topk_accuracy(scores, labels, 5),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }
