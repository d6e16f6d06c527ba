"""Pluggable face detectors, each ``detect(bgr) -> list[FaceBox]`` in frame pixels.

- ``blazeface-back`` (the default): MediaPipe's BlazeFace back-camera model (256 px) through LiteRT
  (``blazeface.py``; the model file ships inside edgecv), with 4 landmarks (eyes, nose, mouth centre) that align
  the face; ``blazeface`` / ``blazeface:FILE.tflite``: its short-range model (128 px), for faces near the camera.
- ``haar``: the frontal-face Haar cascade that ships inside opencv-python 4.x (``cv2.data``:
  ``alt2`` with 3 neighbours: one face in 92% of generated 320x240 photos against 88% for ``default`` with 5, 1.3%
  vs 2% with extra boxes); ``haar:FILE.xml`` for another cascade (a system OpenCV without ``cv2.data``).
- ``yunet:FILE.onnx``: OpenCV's YuNet (``cv2.FaceDetectorYN``), which also gives 5 landmarks (faces are then aligned).
- ``FILE.onnx`` / ``FILE.tflite`` exported by ``edgecv export`` from a detector trained on face boxes (any class, or
  ``FILE.onnx#face`` for one class), run through the runtime's own backend and NMS.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgecv.errors import EdgecvError
from edgecv.runtime.faces import DEFAULT_DETECTOR as DEFAULT
from edgecv.runtime.faces.box import FaceBox, FaceDetector


class HaarFaceDetector:
    name = "haar"

    def __init__(self, cascade: str | None = None, min_size: int = 32, scale_factor: float = 1.1, min_neighbors: int = 3):
        if cascade is None:
            data = getattr(cv2, "data", None)
            if data is None:
                raise EdgecvError(
                    "this OpenCV build has no bundled Haar cascades (cv2.data); pass "
                    "--face-detector haar:/path/to/haarcascade_frontalface_default.xml"
                )
            cascade = str(Path(data.haarcascades) / "haarcascade_frontalface_alt2.xml")
        self.cascade = cv2.CascadeClassifier(cascade)
        if self.cascade.empty():
            raise EdgecvError(f"{cascade}: not a readable Haar cascade")
        self.min_size, self.scale_factor, self.min_neighbors = min_size, scale_factor, min_neighbors

    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        """A cascade gives no probability (its level weights run to ~50): a face that passed every stage is a face,
        score 1."""
        gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr)
        found = self.cascade.detectMultiScale(gray, self.scale_factor, self.min_neighbors, minSize=(self.min_size, self.min_size))
        return [FaceBox(np.float32([x, y, x + w, y + h])) for x, y, w, h in np.asarray(found).reshape(-1, 4)]


class YuNetFaceDetector:
    name = "yunet"

    def __init__(self, model: str, score: float = 0.8, nms: float = 0.3):
        if not Path(model).is_file():
            raise EdgecvError(f"{model}: YuNet ONNX file not found (face_detection_yunet_2023mar.onnx from opencv_zoo)")
        self.net = cv2.FaceDetectorYN.create(model, "", (320, 320), score, nms)

    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        self.net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self.net.detect(bgr)
        out = []
        for f in faces if faces is not None else np.zeros((0, 15), np.float32):
            x, y, w, h = f[:4]
            out.append(FaceBox(np.float32([x, y, x + w, y + h]), float(f[14]), f[4:14].reshape(5, 2).astype(np.float32)))
        return out


class ArtifactFaceDetector:
    """An edgecv detector artifact (``task: detect``) whose boxes are faces."""

    name = "edgecv-detector"

    def __init__(self, path: str, label: str | None = None, conf: float = 0.4, threads: int = 1):
        from edgecv.results import Detections
        from edgecv.runtime.backends import create_backend
        from edgecv.runtime.postprocess import get_postprocess
        from edgecv.runtime.preprocess import prepare_frame

        self.backend = create_backend(path, threads=threads)
        post = get_postprocess(self.backend.meta.task)
        if post.result is not Detections:
            raise EdgecvError(f"{path}: a face detector artifact must be a detector (task detect), not {self.backend.meta.task}")
        if label is not None and label not in self.backend.meta.labels:
            raise EdgecvError(f"{path}: has no class {label!r} (classes: {', '.join(self.backend.meta.labels)})")
        self.label, self.options = label, post.options(conf=conf, iou=0.45)
        self._post, self._prepare = post, prepare_frame

    def close(self) -> None:
        self.backend.close()

    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        meta = self.backend.meta
        x, tf = self._prepare(bgr, meta, "BGR")
        dets = self._post(self.backend.infer(x[None]), meta, self.options, tf)
        return [
            FaceBox(dets.xyxy[i].astype(np.float32), float(dets.scores[i]))
            for i in range(len(dets))
            if self.label is None or dets.labels[i] == self.label
        ]


def create_face_detector(spec: str = DEFAULT, min_size: int = 32) -> FaceDetector:
    """``haar`` | ``haar:FILE.xml`` | ``yunet:FILE.onnx`` | ``blazeface[:FILE.tflite]`` | ``blazeface-back`` |
    ``DETECTOR.onnx|.tflite[#class]``."""
    kind, _, arg = spec.partition(":")
    if kind == "haar":
        return HaarFaceDetector(arg or None, min_size=min_size)
    if kind in ("blazeface", "blazeface-back"):
        from edgecv.runtime.faces.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(arg or None, name=kind, min_size=min_size)
    if kind == "yunet":
        if not arg:
            raise EdgecvError("--face-detector yunet needs the model file: yunet:/path/to/face_detection_yunet.onnx")
        return YuNetFaceDetector(arg)
    path, _, label = spec.partition("#")
    if Path(path).suffix.lower() in (".onnx", ".tflite", ".engine"):
        return ArtifactFaceDetector(path, label or None)
    raise EdgecvError(
        f"--face-detector {spec!r}: expected haar, haar:FILE.xml, yunet:FILE.onnx, blazeface, blazeface-back, "
        "blazeface:FILE.tflite or an edgecv detector artifact"
    )
