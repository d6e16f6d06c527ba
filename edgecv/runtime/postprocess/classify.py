"""Classifier logits -> ``Classification`` (softmax, top-k). An imported model that outputs probabilities already
(``decoder.type`` ``probabilities``: a softmax at the end of its graph) is read as their logarithm, whose softmax is
those probabilities again."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.results import Classification
from edgecv.runtime.postprocess._registry import register_postprocess


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@dataclass(frozen=True)
class ClassifyOptions:
    topk: int = 3  # classes reported per frame


def top_probability(outputs: list[np.ndarray], conf_filter: float | None = None) -> float:
    """The best class's softmax probability (what ``Classification.confidence`` is); no filter applies."""
    return float(softmax(outputs[0][0].astype(np.float32)).max())


def logits_of(outputs: list[np.ndarray], meta: ArtifactMeta) -> list[np.ndarray]:
    if meta.decoder.type != "probabilities":
        return outputs
    return [np.log(np.clip(np.asarray(outputs[0], np.float32), 1e-30, None)), *outputs[1:]]


@register_postprocess("classify", ClassifyOptions, Classification, confidence=top_probability, canonical=logits_of)
def classify_topk(outputs: list[np.ndarray], meta: ArtifactMeta, transform=None, topk: int = 3) -> Classification:
    """``transform`` is accepted for the common call and unused: a class has no geometry."""
    k = topk
    probs = softmax(outputs[0][0].astype(np.float32))
    k = min(k, len(probs))
    top = np.argpartition(-probs, k - 1)[:k]
    top = top[np.argsort(-probs[top], kind="stable")]
    return Classification(top, probs[top], tuple(meta.labels[i] for i in top), probs)
