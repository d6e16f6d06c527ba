"""MediaPipe's BlazeFace face detectors (Apache-2.0), run by the runtime's LiteRT interpreter and decoded here in
numpy. Two models: *short range* (``blazeface``: 128x128 input, faces near the camera, as a phone's front camera
sees them) and *back* (``blazeface-back``: 256x256, the rear camera's, for smaller, farther faces at about 4x the
compute). Both: letterboxed RGB in [-1, 1], 896 SSD anchors (16x16 cells x 2, then 8x8 cells x 6, fixed size: the
same centres relative to the input), per anchor a box and 6 keypoints (eyes, nose tip, mouth centre, ears) as
offsets in input pixels, and a logit; boxes over ``score`` are merged by MediaPipe's weighted NMS (each
cluster overlapping its best box by IoU over ``nms`` becomes the score-weighted mean of its boxes and keypoints).

Both model files ship inside edgecv (``models/``, 544 kB, with MediaPipe's license and a NOTICE of where they come
from), so ``edgecv[runtime]`` runs them with nothing more installed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgecv.errors import EdgecvError
from edgecv.runtime.faces.box import FaceBox

MODELS = {"blazeface": "face_detection_short_range.tflite", "blazeface-back": "face_detection_back.tflite"}
NAMES = {128: "blazeface", 256: "blazeface-back"}  # by input side: the short-range and the back model
HERE = Path(__file__).resolve().parent / "models"


def bundled_model(name: str = "blazeface") -> Path:
    """The BlazeFace model ``--face-detector name`` names, from edgecv's own package data."""
    path = HERE / MODELS[name]
    if not path.is_file():
        raise EdgecvError(f"{path} is missing: this edgecv install is incomplete; reinstall it (or {name}:FILE.tflite)")
    return path


def anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1], in the model's output order (MediaPipe's SsdAnchorsCalculator with the
    short-range options: strides 8, 16, 16, 16 at 128 px, two anchors per layer and cell, layers of one stride
    together; the back model's, strides 16, 32, 32, 32 at 256 px, are the same centres)."""
    out = []
    for cells, per_cell in ((16, 2), (8, 6)):
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out)


def decode(
    regressors: np.ndarray, logits: np.ndarray, anchor: np.ndarray, score: float, size: int = 128
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (n, 4, xyxy) and keypoints (n, 6, 2) in input pixels, and scores, of the anchors scoring ``score``
    or more. ``regressors`` (896, 16): box centre offset, width, height, then 6 keypoint offsets; ``size``: the
    model's input side."""
    p = 0.5 * (1 + np.tanh(0.5 * np.clip(logits.astype(np.float64), -100, 100)))  # sigmoid, no overflow
    keep = np.flatnonzero(p >= score)
    r, a = regressors[keep].astype(np.float64), anchor[keep] * size
    centre, half = r[:, :2] + a, r[:, 2:4] / 2
    points = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
    return np.concatenate([centre - half, centre + half], 1), points, p[keep]


def weighted_nms(
    boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, iou: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-maximum suppression: best first, the boxes overlapping it by IoU over ``iou``
    (itself included) are averaged with their scores as weights; the cluster keeps the best score."""
    from edgecv.runtime.track.matching import iou_matrix

    order = np.argsort(-scores, kind="stable")
    boxes, points, scores = boxes[order], points[order], scores[order]
    left = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = np.flatnonzero(left & (iou_matrix(boxes[i : i + 1], boxes)[0] > iou))  # i itself included (IoU 1)
        w = scores[group] / scores[group].sum()
        out.append((w @ boxes[group], np.tensordot(w, points[group], 1), float(scores[i])))
        left[group] = False
    return out


class BlazeFaceDetector:
    name = "blazeface"

    def __init__(
        self,
        model: str | None = None,
        score: float = 0.5,
        nms: float = 0.3,
        threads: int = 1,
        name: str = "blazeface",
        min_size: int = 0,
    ):
        from edgecv.runtime.backends.litert import open_interpreter

        path = Path(model) if model else bundled_model(name)
        if not path.is_file():
            raise EdgecvError(f"{path}: BlazeFace .tflite not found")
        self.interpreter = open_interpreter(path, threads)
        inp = self.interpreter.get_input_details()[0]
        outs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        shape, self.size = tuple(inp["shape"]), int(inp["shape"][1])
        if shape != (1, self.size, self.size, 3) or self.size not in NAMES or set(outs) != {"regressors", "classificators"}:
            raise EdgecvError(f"{path}: not BlazeFace short range or back (input {shape}, outputs {sorted(outs)})")
        self.name = NAMES[self.size]
        self._in, self._reg, self._cls = inp["index"], outs["regressors"], outs["classificators"]
        self.score, self.nms, self._anchors, self.min_size = score, nms, anchors(), min_size

    def close(self) -> None:
        self.interpreter = None

    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        """Faces in frame pixels; landmarks: right eye, left eye, nose tip, mouth centre (the subject's right
        first, as the ArcFace template orders them)."""
        h, w, size = *bgr.shape[:2], self.size
        s = size / max(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        top, left = (size - nh) // 2, (size - nw) // 2
        x = np.zeros((size, size, 3), np.float32)
        x[top : top + nh, left : left + nw] = cv2.cvtColor(
            cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB
        )
        x = x / 127.5 - 1
        self.interpreter.set_tensor(self._in, x[None])
        self.interpreter.invoke()
        reg = self.interpreter.get_tensor(self._reg)[0]
        logits = self.interpreter.get_tensor(self._cls)[0, :, 0]
        boxes, points, scores = decode(reg, logits, self._anchors, self.score, size)
        shift = np.float64([left, top])
        faces = []
        for box, pts, sc in weighted_nms(boxes, points, scores, self.nms):
            box = (box.reshape(2, 2) - shift) / s
            pts = (pts[:4] - shift) / s  # the ears are not on the ArcFace template
            faces.append(FaceBox(box.reshape(4).astype(np.float32), sc, pts.astype(np.float32)))
        return [f for f in faces if f.size >= self.min_size]  # as Haar's minSize: no chip from a face this small
