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

    def describe(self) -> str:
        """One line: the top classes with their scores."""
        return ", ".join(f"{lb} {float(sc):.3f}" for lb, sc in zip(self.labels, self.scores))

    def to_dict(self) -> dict:
        return {
            "task": "classify",
            "top": [
                {"label": lb, "class_id": int(c), "score": round(float(s), 5)}
                for lb, c, s in zip(self.labels, self.class_ids, self.scores)
            ],
        }


@dataclass(frozen=True)
class Detections:
    """Boxes in frame pixels (x1, y1, x2, y2), their scores and class ids, after NMS."""

    xyxy: np.ndarray  # (n, 4) float32
    scores: np.ndarray  # (n,) float32
    class_ids: np.ndarray  # (n,) int
    labels: tuple[str, ...] = ()
    track_ids: np.ndarray | None = None  # (n,) int64 > 0 when tracked: the same object keeps its id across frames

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.track_ids is not None:
            if self.track_ids.shape != (n,) or not np.issubdtype(self.track_ids.dtype, np.integer):
                raise EdgecvError("Detections: track_ids must be (n,) integers")
            if n and int(self.track_ids.min()) < 1:
                raise EdgecvError("Detections: track ids are positive (an untracked box is not reported)")
        if self.xyxy.shape != (n, 4) or self.class_ids.shape != (n,) or self.scores.ndim != 1:
            raise EdgecvError(
                f"Detections: need xyxy (n, 4), scores (n,), class_ids (n,); got {self.xyxy.shape}, "
                f"{self.scores.shape}, {self.class_ids.shape}"
            )
        if n and np.any(self.xyxy[:, 2:] < self.xyxy[:, :2]):
            raise EdgecvError("Detections: every box needs x2 >= x1 and y2 >= y1")
        if self.labels and len(self.labels) != n:
            raise EdgecvError("Detections: labels must name every box")

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def confidence(self) -> float:
        return float(self.scores.max()) if len(self.scores) else 0.0

    def subset(
        self,
        index: np.ndarray,
        track_ids: np.ndarray | None = None,
        class_ids: np.ndarray | None = None,
        names: tuple[str, ...] = (),
    ) -> "Detections":
        """The boxes at ``index``, in that order (with their track ids; with ``class_ids``, the classes their
        tracks decided, labelled from ``names``)."""
        if class_ids is None:
            return Detections(
                self.xyxy[index],
                self.scores[index],
                self.class_ids[index],
                tuple(self.labels[i] for i in index) if self.labels else (),
                track_ids,
            )
        class_ids = np.asarray(class_ids, np.int64)
        return Detections(
            self.xyxy[index], self.scores[index], class_ids, tuple(names[c] for c in class_ids) if names else (), track_ids
        )

    def describe(self) -> str:
        """One line: how many boxes, then each one's label, score and box."""
        boxes = [
            f"{self.labels[i] if self.labels else int(self.class_ids[i])} {float(self.scores[i]):.2f} "
            f"[{', '.join(f'{v:.0f}' for v in self.xyxy[i])}]"
            for i in range(len(self))
        ]
        return f"{len(boxes)} box(es)" + (": " + "; ".join(boxes) if boxes else "")

    def to_dict(self) -> dict:
        return {
            "task": "detect",
            "boxes": [
                {
                    "label": self.labels[i] if self.labels else int(self.class_ids[i]),
                    "class_id": int(self.class_ids[i]),
                    "score": round(float(self.scores[i]), 5),
                    "xyxy": [round(float(v), 1) for v in self.xyxy[i]],
                    **({"track_id": int(self.track_ids[i])} if self.track_ids is not None else {}),
                }
                for i in range(len(self))
            ],
        }


@dataclass(frozen=True)
class Faces:
    """Faces in frame pixels with the gallery identity each matched (``None``: unknown, below the threshold) and
    the cosine similarity to the nearest enrolled identity."""

    xyxy: np.ndarray  # (n, 4) float32
    names: tuple[str | None, ...]  # matched identity, None for an unknown face
    similarities: np.ndarray  # (n,) float32, to the nearest identity (-1 when the gallery is empty)
    nearest: tuple[str | None, ...] = ()  # the nearest identity even when it is below the threshold
    embeddings: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), np.float32))
    track_ids: np.ndarray | None = None  # (n,) int64 > 0 when tracked (names are then decided per track)

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.xyxy.shape != (n, 4) or self.similarities.shape != (n,):
            raise EdgecvError(
                f"Faces: need xyxy (n, 4), names (n) and similarities (n,); got {self.xyxy.shape}, {n}, {self.similarities.shape}"
            )
        if self.nearest and len(self.nearest) != n:
            raise EdgecvError("Faces: nearest must name every face")
        if self.track_ids is not None and (self.track_ids.shape != (n,) or (n and int(self.track_ids.min()) < 1)):
            raise EdgecvError("Faces: track_ids must be (n,) positive integers")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def confidence(self) -> float:
        """The best match similarity in the frame (0 without faces)."""
        return float(self.similarities.max()) if len(self) else 0.0

    def describe(self) -> str:
        """One line: how many faces, then each one's name (or unknown), similarity and box."""
        faces = [
            f"{self.names[i] or 'unknown'} {float(self.similarities[i]):.2f} [{', '.join(f'{v:.0f}' for v in self.xyxy[i])}]"
            for i in range(len(self))
        ]
        return f"{len(faces)} face(s)" + (": " + "; ".join(faces) if faces else "")

    def to_dict(self) -> dict:
        return {
            "task": "embed",
            "faces": [
                {
                    "name": self.names[i],
                    "known": self.names[i] is not None,
                    "similarity": round(float(self.similarities[i]), 4),
                    **({"nearest": self.nearest[i]} if self.nearest else {}),
                    **({"track_id": int(self.track_ids[i])} if self.track_ids is not None else {}),
                    "xyxy": [round(float(v), 1) for v in self.xyxy[i]],
                }
                for i in range(len(self))
            ],
        }
