"""Face embeddings -> ``Faces``: each face's embedding matched against the gallery's templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.results import Faces
from edgecv.runtime.faces.gallery import l2_normalize
from edgecv.runtime.faces.match import identify
from edgecv.runtime.postprocess._registry import register_postprocess


@dataclass(frozen=True)
class EmbedOptions:
    threshold: float | None = None  # cosine similarity to accept a match (None: the artifact's calibrated one)
    gallery: Any = None  # a LiveTemplates (the enrolment gallery), None: every face is unknown


@register_postprocess("embed", EmbedOptions, Faces)
def faces_postprocess(
    outputs: list[np.ndarray], meta: ArtifactMeta, transform=None, threshold: float | None = None, gallery=None
) -> Faces:
    """``outputs[0]``: (n, d) embeddings of the n faces whose frame boxes ``transform`` holds ((n, 4) array);
    ``gallery``: a ``LiveTemplates``."""
    boxes = np.asarray(transform if transform is not None else np.zeros((0, 4)), np.float32).reshape(-1, 4)
    emb = l2_normalize(outputs[0].reshape(len(boxes), -1)) if len(boxes) else np.zeros((0, 0), np.float32)
    if gallery is None or not len(boxes):
        return Faces(boxes, (None,) * len(boxes), np.full(len(boxes), -1.0, np.float32), (), emb)
    thr = meta.thresholds.required("match", "the embedder", "pass a threshold") if threshold is None else threshold
    names, nearest, sims = identify(emb, gallery.get(), thr)
    return Faces(boxes, tuple(names), sims, tuple(nearest), emb)
