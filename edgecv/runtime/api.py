"""The Python API of the device half: ``edgecv.load(path)`` -> a ``Model`` whose ``predict(image)`` gives the typed
result (``Classification``, ``Detections`` or ``Faces``) through the very stage ``edgecv run`` uses on a folder of
images (same preprocessing, backend, postprocessing, gallery matching). No torch."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.errors import EdgecvError
from edgecv.runtime.backends import create_backend
from edgecv.runtime.sources import Frame
from edgecv.runtime.stages import StageOptions, create_stage
from edgecv.runtime.telemetry import Telemetry

OPTIONS = ("topk", "conf", "iou", "gallery", "face_detector", "match_threshold")


class Model:
    """An exported artifact (.onnx, .tflite, .engine) ready to predict on single images.

    ``options`` are ``edgecv run``'s task options: ``topk`` (classifiers), ``conf``/``iou`` (detectors),
    ``gallery``/``face_detector``/``match_threshold`` (face embedders); one that does not apply to the artifact is
    refused, as on the command line. Images are unrelated stills: detectors are not tracked."""

    def __init__(self, path: str | Path, threads: int | None = None, backend: str | None = None, **options: Any):
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise EdgecvError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
        self.path = Path(path)
        if not self.path.is_file():
            raise EdgecvError(f"{path}: no such model file")
        self._stack = ExitStack()
        try:
            self.backend = create_backend(self.path, name=backend, threads=threads)
            values = {k: options.get(k) for k in OPTIONS}
            self._stage = create_stage(self.backend, StageOptions(values, str(self.path), still_images=True), self._stack)
        except BaseException:
            self._stack.close()
            raise
        self._tel, self._count = Telemetry(), 0

    @property
    def meta(self) -> ArtifactMeta:
        """The artifact's metadata: task, labels, input size, precision, and its fidelity report."""
        return self.backend.meta

    def predict(self, image: str | Path | np.ndarray) -> Any:
        """The typed result for one image: a path (read as ``edgecv run`` reads image files) or an H x W x 3 uint8
        array in OpenCV's BGR order."""
        if isinstance(image, (str, Path)):
            import cv2

            bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
            if bgr is None:
                raise EdgecvError(f"{image}: not a readable image")
            name = str(image)
        else:
            bgr = np.asarray(image)
            if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
                raise EdgecvError(f"predict needs an H x W x 3 uint8 BGR image, got {bgr.dtype} {bgr.shape}")
            name = ""
        frame = Frame(bgr, self._count, time.monotonic(), name, pts=float(self._count))
        self._count += 1
        job = self._stage.prepare(frame, self._tel)
        self._stage.infer(job)
        return self._stage.finish(job)[0]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.meta
        return f"Model({str(self.path)!r}, task={m.task!r}, precision={m.precision!r}, backend={self.backend.name!r})"


def load(path: str | Path, threads: int | None = None, backend: str | None = None, **options: Any) -> Model:
    """``edgecv.load``: see ``Model``."""
    return Model(path, threads=threads, backend=backend, **options)
