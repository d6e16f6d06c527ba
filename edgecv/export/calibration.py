"""Calibration data: a stratified, seeded sample of the run's own train split, preprocessed exactly as on
the device (``runtime.preprocess.prepare_input``). Its file list's hash goes into every int8 artifact."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgecv._quiet import progress
from edgecv.artifact import ArtifactMeta
from edgecv.data.imagefolder import UnreadableImage, read_rgb
from edgecv.errors import EdgecvError
from edgecv.runtime.preprocess import letterbox, prepare_input

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    images: np.ndarray  # N x H x W x 3 uint8 RGB, already at the model's input size
    files: tuple[str, ...]
    hash: str
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.images)

    def inputs(self, meta: ArtifactMeta, batch: int = 1, desc: str | None = None) -> Iterator[np.ndarray]:
        """Float input batches in ``meta``'s layout (a float graph's input: never int8-quantized); ``desc``: a
        progress bar of that name (shown on a terminal)."""
        float_meta = dataclasses.replace(meta, input_quant=None)
        starts = range(0, len(self.images), batch)
        for i in progress(starts, desc=desc, disable=None if desc else True, leave=False, unit="batch"):
            yield np.stack([prepare_input(im, float_meta) for im in self.images[i : i + batch]])


def stratified_sample(labels: Sequence[int], n: int, seed: int) -> list[int]:
    """``n`` indices spread over the classes in proportion to their size (at least one each while n allows)."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.floor(counts / counts.sum() * n)).astype(int)
    while quota.sum() > n:
        quota[np.argmax(quota)] -= 1
    order = np.argsort(-(counts / counts.sum() * n - quota))
    for k in order[: n - quota.sum()]:
        quota[k] += 1
    picked = []
    for c, q in zip(classes, quota):
        members = np.flatnonzero(labels == c)
        picked += rng.choice(members, size=min(q, len(members)), replace=False).tolist()
    return sorted(picked)


def files_hash(files: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()[:16]


def read_images(
    root: str | Path, files: Sequence[str], input_size: tuple[int, int], desc: str = "images", resize: str = "stretch"
) -> tuple[np.ndarray, list[int], int]:
    """uint8 RGB images at the model's input size (the device's resize or letterbox), the indices of ``files``
    that were readable, and how many were not (logged and skipped)."""
    h, w = input_size
    images, kept, skipped = [], [], 0
    for i, rel in enumerate(progress(files, desc=desc, disable=None, leave=False)):
        try:
            rgb = read_rgb(Path(root) / rel)
        except UnreadableImage as exc:
            log.warning("%s: skipping %s (%s)", desc, rel, exc)
            skipped += 1
            continue
        if resize == "letterbox":
            images.append(letterbox(rgb, (h, w))[0])
        else:
            images.append(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR) if rgb.shape[:2] != (h, w) else rgb)
        kept.append(i)
    if not images:
        raise EdgecvError(f"{root}: none of the {len(files)} {desc} could be read")
    return np.stack(images), kept, skipped


def load_calibration(
    root: str | Path,
    files: Sequence[str],
    labels: Sequence[int],
    n: int,
    input_size: tuple[int, int],
    seed: int = 0,
    resize: str = "stretch",
) -> Calibration:
    """Read a stratified sample of ``n`` of ``files``; unreadable images are skipped and counted."""
    chosen = [files[i] for i in stratified_sample(labels, n, seed)]
    images, kept, skipped = read_images(root, chosen, input_size, "calibration images", resize)
    names = [chosen[i] for i in kept]
    return Calibration(images, tuple(names), files_hash(names), skipped)


def raw_frames(root: str | Path, files: list[str] | tuple[str, ...]) -> list[np.ndarray]:
    """The images as the device's image source reads them (``cv2.imread``, BGR, full size); unreadable ones skipped."""
    frames = [cv2.imread(str(Path(root) / f), cv2.IMREAD_COLOR) for f in files]
    return [f for f in frames if f is not None]
