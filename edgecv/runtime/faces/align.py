"""Face chips: aligned with the detector's landmarks when it gives them (5 from YuNet, 4 from BlazeFace), else a
square crop with a margin.

Training data, enrolment and the camera pipeline all make chips with ``face_chip`` so the embedder sees the
same framing everywhere.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgecv.runtime.faces.box import FaceBox

CHIP = 128  # stored chip side (pixels); resized to the embedder's input size when embedded
# extra context around a detector box, per side, as a fraction of its side (Haar boxes already span brows to chin;
# background in the chip hurts matching: see data/faces.py)
MARGIN = 0.0
# ArcFace's 5-point template for 112x112 chips (insightface), normalised to [0, 1]
TEMPLATE = (
    np.float32([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]) / 112.0
)
TEMPLATES = {5: TEMPLATE, 4: np.concatenate([TEMPLATE[:3], TEMPLATE[3:].mean(0, keepdims=True)])}  # 4: mouth centre


def crop_face(bgr: np.ndarray, xyxy: np.ndarray, size: int = CHIP, margin: float = MARGIN) -> np.ndarray:
    """A square chip centred on the box, ``margin`` of its side added on every side; pixels outside the frame
    replicate the border."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    s = size / side
    m = np.float32([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
    return cv2.warpAffine(
        bgr, m, (size, size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def align_face(bgr: np.ndarray, landmarks: np.ndarray, size: int = CHIP) -> np.ndarray:
    """Similarity transform (rotation, uniform scale, shift) taking the landmarks onto the ArcFace template (its
    5 points, or eyes, nose and mouth centre for 4)."""
    if len(landmarks) not in TEMPLATES:
        raise ValueError(f"{len(landmarks)} landmarks: expected 5 or 4")
    m, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), TEMPLATES[len(landmarks)] * size, method=cv2.LMEDS)
    if m is None:
        raise ValueError("landmarks are degenerate")
    return cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def face_chip(bgr: np.ndarray, face: FaceBox, size: int = CHIP) -> np.ndarray:
    if face.landmarks is not None:
        try:
            return align_face(bgr, face.landmarks, size)
        except ValueError:
            pass
    return crop_face(bgr, face.xyxy, size)


def sharpness(bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the chip (low: blurred)."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())
