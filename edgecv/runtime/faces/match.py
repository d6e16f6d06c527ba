"""Cosine matching against the gallery's templates (one matrix product per frame), the embedder's identity, the
live view of a gallery that another process may be enrolling into, and a match threshold calibrated on the
gallery's own people."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgecv.artifact import ArtifactMeta, EmbedDecoder
from edgecv.errors import EdgecvError
from edgecv.runtime.faces.gallery import EmbedderStamp, Gallery, Templates, l2_normalize
from edgecv.runtime.preprocess import prepare_frame


def embedder_stamp(meta: ArtifactMeta, model: str = "model") -> EmbedderStamp:
    dec = meta.decoder
    if not isinstance(dec, EmbedDecoder):
        raise EdgecvError(f"{model}: not a face embedder artifact (task {meta.task}); export an `task: embed` run")
    suffix = Path(str(model)).suffix.lstrip(".") or "?"
    return EmbedderStamp(dec.embedder_id, str(meta.source.get("run", "?")), dec.dim, f"{meta.precision} {suffix}")


def embed_chips(backend, chips_bgr: Sequence[np.ndarray]) -> np.ndarray:
    """(n, d) L2-normalised embeddings of BGR face chips, one backend call each (artifacts have batch 1)."""
    meta = backend.meta
    if not len(chips_bgr):
        return np.zeros((0, meta.decoder.dim), np.float32)
    return l2_normalize(np.concatenate([backend.infer(prepare_frame(c, meta, "BGR")[0][None])[0] for c in chips_bgr]))


def search(queries: np.ndarray, templates: Templates) -> tuple[np.ndarray, np.ndarray]:
    """Index and cosine similarity of each query's nearest template (queries and templates L2-normalised)."""
    if not len(templates):
        return np.full(len(queries), -1, np.int64), np.full(len(queries), -1.0, np.float32)
    sims = queries @ templates.vectors.T  # (n, K): one BLAS call
    best = sims.argmax(1)
    return best, sims[np.arange(len(queries)), best].astype(np.float32)


def identify(
    queries: np.ndarray, templates: Templates, threshold: float
) -> tuple[list[str | None], list[str | None], np.ndarray]:
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


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """The lowest threshold at which at most ``far`` of the impostor scores match (similarity >= threshold).
    With fewer than 1/far impostor scores this is just above the best impostor (FAR 0 on these scores)."""
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    if not len(imp):
        return 1.0
    k = int(np.floor(far * len(imp)))  # impostors allowed at or above the threshold
    if k >= len(imp):
        return float(imp[-1])
    return float(np.nextafter(imp[k], np.inf))


@dataclass(frozen=True)
class GalleryCalibration:
    """A 1:K match threshold set on the gallery's own people (``calibrate_gallery``)."""

    threshold: float
    target_far: float
    far: float  # on these impostor scores, at the threshold
    tar: float  # enrolled shots recognised against their own template without them (leave-one-out); nan if none
    people: int
    impostors: int
    genuine: int
    embedder_id: str
    resolved: bool  # impostors * target_far >= 1: else the FAR asked for is below what these scores can measure


def gallery_scores(names: Sequence[str], vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) similarities as ``edgecv run --gallery`` matches: each shot against every other
    person's template (impostor: an enrolled face is, to anyone else's template, a stranger), and against its own
    person's template made without it (genuine; people with at least 2 shots)."""
    names = np.asarray(names)
    people, owner = np.unique(names, return_inverse=True)
    vecs = l2_normalize(np.asarray(vectors, np.float64)).astype(np.float64)  # float64: thresholds compare exactly
    sums = np.zeros((len(people), vecs.shape[1]))
    np.add.at(sums, owner, vecs)
    sims = vecs @ l2_normalize(sums).astype(np.float64).T  # (shots, people)
    mine = np.zeros_like(sims, dtype=bool)
    mine[np.arange(len(vecs)), owner] = True
    shots = np.bincount(owner)
    keep = shots[owner] >= 2
    left_out = l2_normalize(sums[owner[keep]] - vecs[keep]).astype(np.float64)
    return np.sum(vecs[keep] * left_out, axis=1), sims[~mine]


def calibrate_gallery(gallery: Gallery, target_far: float) -> GalleryCalibration:
    """The match threshold at ``target_far`` on the impostor scores among the gallery's people, stored in the
    gallery (``run --gallery`` uses it unless ``--match-threshold`` is given)."""
    names, vecs = gallery.embeddings()
    people = len(set(names))
    if people < 2:
        raise EdgecvError(f"{gallery.path}: calibration needs at least 2 enrolled people ({people} enrolled)")
    genuine, impostor = gallery_scores(names, vecs)
    thr = threshold_at_far(impostor, target_far)
    cal = GalleryCalibration(
        thr,
        target_far,
        float(np.mean(impostor >= thr)),
        float(np.mean(genuine >= thr)) if len(genuine) else float("nan"),
        people,
        len(impostor),
        len(genuine),
        gallery.info().get("embedder_id", ""),
        len(impostor) * target_far >= 1,
    )
    gallery.store_calibration(asdict(cal))
    return cal


def stored_threshold(gallery: Gallery) -> tuple[float, str] | None:
    """The gallery's calibrated threshold and a line saying what it rests on, or None if it has none (or one from
    another embedder's vectors). Warns, in the line, when people were enrolled or removed since."""
    cal = gallery.calibration()
    if "threshold" not in cal or cal.get("embedder_id") != gallery.info().get("embedder_id", ""):
        return None
    line = (
        f"calibrated on this gallery at FAR {float(cal['target_far']):g} ({cal['people']} people, "
        f"{cal['impostors']} impostor scores)"
    )
    now = len(gallery.identities())
    if now != int(cal["people"]):
        line += f"; {now} people enrolled now: run `edgecv gallery calibrate` again"
    return float(cal["threshold"]), line
