"""The typed results that flow from postprocess to drift, telemetry and every sink (numpy only).

One class per task, validated on construction, so a sink never guesses what a list of arrays means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgecv.errors import EdgecvError


@dataclass(frozen=True)
class Classification:
    """Top-k classes of one frame, best first; ``probs`` is the full softmax (for drift's confidence)."""

    class_ids: np.ndarray  # (k,) int
    scores: np.ndarray  # (k,) float, descending
    labels: tuple[str, ...]  # the names of class_ids
    probs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        if self.class_ids.ndim != 1 or self.class_ids.shape != self.scores.shape or len(self.labels) != len(self.class_ids):
            raise EdgecvError("Classification: class_ids, scores and labels must be 1-D and of equal length")
        if len(self.scores) > 1 and np.any(np.diff(self.scores) > 0):
            raise EdgecvError("Classification: scores must be sorted best first")

    @property
    def confidence(self) -> float:
        return float(self.scores[0]) if len(self.scores) else 0.0

    def to_dict(self) -> dict:
        return {"task": "classify", "top": [{"label": lb, "class_id": int(c), "score": round(float(s), 5)}
                                            for lb, c, s in zip(self.labels, self.class_ids, self.scores)]}


@dataclass(frozen=True)
class Detections:
    """Boxes in frame pixels (x1, y1, x2, y2), their scores and class ids, after NMS."""

    xyxy: np.ndarray  # (n, 4) float32
    scores: np.ndarray  # (n,) float32
    class_ids: np.ndarray  # (n,) int
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.xyxy.shape != (n, 4) or self.class_ids.shape != (n,) or self.scores.ndim != 1:
            raise EdgecvError(f"Detections: need xyxy (n, 4), scores (n,), class_ids (n,); got {self.xyxy.shape}, "
                              f"{self.scores.shape}, {self.class_ids.shape}")
        if n and np.any(self.xyxy[:, 2:] < self.xyxy[:, :2]):
            raise EdgecvError("Detections: every box needs x2 >= x1 and y2 >= y1")
        if self.labels and len(self.labels) != n:
            raise EdgecvError("Detections: labels must name every box")

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def confidence(self) -> float:
        return float(self.scores.max()) if len(self.scores) else 0.0

    def to_dict(self) -> dict:
        return {"task": "detect", "boxes": [
            {"label": self.labels[i] if self.labels else int(self.class_ids[i]), "class_id": int(self.class_ids[i]),
             "score": round(float(self.scores[i]), 5), "xyxy": [round(float(v), 1) for v in self.xyxy[i]]}
            for i in range(len(self))]}
