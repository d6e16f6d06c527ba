"""Cosine matching against the gallery's templates (one matrix product per frame), the embedder's identity, and
the live view of a gallery that another process may be enrolling into."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.errors import EdgecvError
from edgecv.runtime.faces.gallery import EmbedderStamp, Gallery, Templates, l2_normalize
from edgecv.runtime.preprocess import prepare_frame


def embedder_stamp(meta: ArtifactMeta, model: str = "model") -> EmbedderStamp:
    dec = meta.decoder or {}
    if meta.task != "embed" or "embedder_id" not in dec:
        raise EdgecvError(f"{model}: not a face embedder artifact (task {meta.task}); export an `task: embed` run")
    suffix = Path(str(model)).suffix.lstrip(".") or "?"
    return EmbedderStamp(dec["embedder_id"], str(meta.source.get("run", "?")), int(dec["dim"]),
                         f"{meta.precision} {suffix}")


def embed_chips(backend, chips_bgr: Sequence[np.ndarray]) -> np.ndarray:
    """(n, d) L2-normalised embeddings of BGR face chips, one backend call each (artifacts have batch 1)."""
    meta = backend.meta
    if not len(chips_bgr):
        return np.zeros((0, int((meta.decoder or {}).get("dim", 0))), np.float32)
    return l2_normalize(np.concatenate([backend.infer(prepare_frame(c, meta, "BGR")[0][None])[0] for c in chips_bgr]))


def search(queries: np.ndarray, templates: Templates) -> tuple[np.ndarray, np.ndarray]:
    """Index and cosine similarity of each query's nearest template (queries and templates L2-normalised)."""
    if not len(templates):
        return np.full(len(queries), -1, np.int64), np.full(len(queries), -1.0, np.float32)
    sims = queries @ templates.vectors.T  # (n, K): one BLAS call
    best = sims.argmax(1)
    return best, sims[np.arange(len(queries)), best].astype(np.float32)


def identify(queries: np.ndarray, templates: Templates, threshold: float) -> tuple[list[str | None], list[str | None], np.ndarray]:
    """1:K open-set identification: (matched names, None below ``threshold``; nearest names; similarities)."""
    best, sims = search(queries, templates)
    nearest = [templates.names[i] if i >= 0 else None for i in best]
    return [n if s >= threshold else None for n, s in zip(nearest, sims)], nearest, sims


def verify(a: np.ndarray, b: np.ndarray, threshold: float) -> tuple[bool, float]:
    """1:1: same person when the cosine similarity reaches ``threshold``."""
    s = float(l2_normalize(a).ravel() @ l2_normalize(b).ravel())
    return s >= threshold, s


class LiveTemplates:
    """A gallery's templates, reloaded when another connection has committed (checked every ``poll_s``)."""

    def __init__(self, gallery: Gallery, poll_s: float = 1.0):
        self.gallery, self.poll_s = gallery, poll_s
        self._version, self._checked = gallery.version(), time.monotonic()
        self.templates = gallery.templates()
        self.reloads = 0

    def get(self) -> Templates:
        now = time.monotonic()
        if now - self._checked >= self.poll_s:
            self._checked = now
            v = self.gallery.version()
            if v != self._version:
                self._version, self.templates = v, self.gallery.templates()
                self.reloads += 1
        return self.templates
