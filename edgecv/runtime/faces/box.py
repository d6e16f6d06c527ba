"""A detected face (box, confidence, landmarks) and what a face detector is: the types every detector shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    xyxy: np.ndarray  # (4,) float32 frame pixels
    score: float = 1.0  # the detector's confidence in [0, 1] (the face tracker fuses it with IoU)
    landmarks: np.ndarray | None = None  # (5, 2): right eye, left eye, nose, right and left mouth corner; or
    # (4, 2): right eye, left eye, nose, mouth centre (BlazeFace)

    @property
    def size(self) -> float:
        return float(min(self.xyxy[2] - self.xyxy[0], self.xyxy[3] - self.xyxy[1]))


class FaceDetector(Protocol):
    name: str

    def detect(self, bgr: np.ndarray) -> list[FaceBox]: ...
