"""Enrolment: photos -> one checked face chip each -> embeddings -> the gallery (one transaction per person).

A shot is rejected, with the reason, when it has no face, several faces, a face smaller than ``min_face``
pixels, or a chip blurrier than ``min_sharpness`` (variance of the Laplacian on the 128 px chip).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecv.errors import EdgecvError
from edgecv.runtime.backends import create_backend
from edgecv.runtime.faces.align import face_chip, sharpness
from edgecv.runtime.faces.box import FaceBox, FaceDetector
from edgecv.runtime.faces.detect import DEFAULT, create_face_detector
from edgecv.runtime.faces.gallery import Gallery
from edgecv.runtime.faces.match import embed_chips, embedder_stamp

log = logging.getLogger(__name__)
MIN_FACE = 48
MIN_SHARPNESS = 15.0


@dataclass(frozen=True)
class ShotCheck:
    file: str
    chip: np.ndarray | None
    reason: str | None  # None: accepted


@dataclass
class EnrollResult:
    name: str
    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    shots: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "accepted": self.accepted,
            "rejected": [{"file": f, "reason": r} for f, r in self.rejected],
            "shots": self.shots,
        }


def _read_bgr(file: str) -> np.ndarray | None:
    try:
        buf = np.fromfile(file, np.uint8)
    except OSError:
        return None
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None


def check_shot(
    bgr: np.ndarray, faces: list[FaceBox], file: str = "", min_face: int = MIN_FACE, min_sharpness: float = MIN_SHARPNESS
) -> ShotCheck:
    if not faces:
        return ShotCheck(file, None, "no face found")
    if len(faces) > 1:
        return ShotCheck(file, None, f"{len(faces)} faces found; an enrolment photo must show one person")
    face = faces[0]
    if face.size < min_face:
        return ShotCheck(file, None, f"face too small ({face.size:.0f} px < {min_face} px)")
    chip = face_chip(bgr, face)
    sharp = sharpness(chip)
    if sharp < min_sharpness:
        return ShotCheck(file, None, f"face too blurry (sharpness {sharp:.1f} < {min_sharpness})")
    return ShotCheck(file, chip, None)


def enroll(
    gallery: str | Path,
    model: str | Path,
    name: str,
    images: list[str],
    detector: str | FaceDetector = DEFAULT,
    min_face: int = MIN_FACE,
    min_sharpness: float = MIN_SHARPNESS,
    threads: int | None = None,
) -> EnrollResult:
    """Enrol ``name`` from ``images`` (one or more photos, combined into one template). Nothing is written when
    every photo is rejected."""
    backend = create_backend(model, threads=threads)
    stamp = embedder_stamp(backend.meta, str(model))
    det = create_face_detector(detector, min_size=min(min_face, 32)) if isinstance(detector, str) else detector
    result = EnrollResult(name)
    good: list[ShotCheck] = []
    for file in images:
        bgr = _read_bgr(file)
        if bgr is None:
            result.rejected.append((file, "unreadable image (missing, empty or not a decodable image)"))
            continue
        shot = check_shot(bgr, det.detect(bgr), file, min_face, min_sharpness)
        if shot.reason:
            result.rejected.append((file, shot.reason))
        else:
            good.append(shot)
    for f, why in result.rejected:
        log.warning("%s: rejected: %s", f, why)
    if not good:
        why = "; ".join(f"{Path(f).name}: {r}" for f, r in result.rejected)
        raise EdgecvError(f"enrol {name!r}: every photo was rejected ({why})")
    chips = [s.chip for s in good]
    with Gallery(gallery, create=True) as g:
        g.check_embedder(stamp, str(model))
        result.shots = g.enroll(name, chips, embed_chips(backend, chips), [s.file for s in good])
    result.accepted = [s.file for s in good]
    return result


def reembed(gallery: str | Path, model: str | Path, threads: int | None = None) -> int:
    """Rebuild every embedding of ``gallery`` with ``model`` from the stored chips; returns the number of shots."""
    backend = create_backend(model, threads=threads)
    stamp = embedder_stamp(backend.meta, str(model))
    with Gallery(gallery) as g:
        return g.reembed(lambda chips: embed_chips(backend, chips), stamp)


@dataclass(frozen=True)
class Verification:
    same: bool
    similarity: float
    threshold: float


def verify_photos(
    model: str | Path,
    a: str,
    b: str,
    detector: str | FaceDetector = DEFAULT,
    threshold: float | None = None,
    threads: int | None = None,
) -> Verification:
    """1:1: do photos ``a`` and ``b`` (one face each) show the same person? Uses the artifact's ``verify``
    threshold (calibrated for single-photo pairs) unless ``threshold`` is given."""
    from edgecv.runtime.faces.match import verify

    backend = create_backend(model, threads=threads)
    embedder_stamp(backend.meta, str(model))
    det = create_face_detector(detector) if isinstance(detector, str) else detector
    chips = []
    for file in (a, b):
        bgr = _read_bgr(file)
        if bgr is None:
            raise EdgecvError(f"{file}: unreadable image")
        shot = check_shot(bgr, det.detect(bgr), file, min_face=24, min_sharpness=0.0)
        if shot.reason:
            raise EdgecvError(f"{file}: {shot.reason}")
        chips.append(shot.chip)
    if threshold is None:
        thr = backend.meta.thresholds.required("verify", str(model), "pass --threshold")
    else:
        thr = threshold
    emb = embed_chips(backend, chips)
    same, sim = verify(emb[0], emb[1], thr)
    return Verification(same, sim, float(thr))


class FaceFrontend:
    """The camera pipeline's face stage before inference: detect, chip and preprocess every face of a frame."""

    def __init__(self, meta, detector: str | FaceDetector = DEFAULT, min_face: int = 32):
        from edgecv.runtime.preprocess import prepare_frame

        self.meta, self._prepare = meta, prepare_frame
        self.detector = create_face_detector(detector, min_size=min_face) if isinstance(detector, str) else detector

    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        return self.detector.detect(bgr)

    def inputs(self, bgr: np.ndarray, faces: list[FaceBox]) -> tuple[np.ndarray, np.ndarray]:
        """(n, *input) tensors, one per face chip, and the faces' (n, 4) frame boxes."""
        h, w = self.meta.input_size
        if not faces:
            shape = (0, 3, h, w) if self.meta.layout == "NCHW" else (0, h, w, 3)
            return np.zeros(shape, np.float32), np.zeros((0, 4), np.float32)
        xs = np.stack([self._prepare(face_chip(bgr, f), self.meta, "BGR")[0] for f in faces])
        return xs, np.stack([f.xyxy for f in faces]).astype(np.float32)
