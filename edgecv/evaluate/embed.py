"""Face-embedder metrics: all-pairs verification (genuine vs impostor cosine similarities), TAR at fixed FAR,
ROC (scikit-learn) and 1:K identification top-1, and the match-threshold calibration to a target FAR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecv.runtime.faces.gallery import l2_normalize
from edgecv.runtime.faces.match import threshold_at_far

FARS = (1e-2, 1e-3)


def pair_scores(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of every unordered pair of images: (genuine = same person, impostor = different)."""
    emb, labels = l2_normalize(emb).astype(np.float64), np.asarray(labels)  # float64: thresholds compare exactly
    i, j = np.triu_indices(len(labels), 1)
    sims = (emb @ emb.T)[i, j]  # one matrix product (n x n), not n^2 / 2 gathered rows
    same = labels[i] == labels[j]
    return sims[same], sims[~same]


def template_scores(emb: np.ndarray, labels: np.ndarray, shots: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Gallery-style scores, as ``edgecv run --gallery`` matches: each identity with more than ``shots`` images is
    enrolled as the renormalised mean of its first ``shots``; its other images are probes. Genuine = probe vs its
    own template, impostor = probe vs every other template."""
    emb, labels = l2_normalize(emb).astype(np.float64), np.asarray(labels)
    ids = [c for c in np.unique(labels) if np.sum(labels == c) > shots]
    if len(ids) < 2:
        return np.zeros(0), np.zeros(0)
    rows = [np.flatnonzero(labels == c) for c in ids]
    templates = l2_normalize(np.stack([emb[r[:shots]].sum(0) for r in rows])).astype(np.float64)
    probes = np.concatenate([r[shots:] for r in rows])
    owner = np.concatenate([np.full(len(r) - shots, k) for k, r in enumerate(rows)])
    sims = emb[probes] @ templates.T
    own = np.zeros_like(sims, dtype=bool)
    own[np.arange(len(probes)), owner] = True
    return sims[own], sims[~own]


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) with the threshold set on these impostor pairs to ``far``."""
    thr = threshold_at_far(impostor, far)
    return (float(np.mean(genuine >= thr)) if len(genuine) else float("nan")), thr


def identify_top1(emb: np.ndarray, labels: np.ndarray) -> float:
    """1:K closed-set identification: each identity's first image is its gallery template, every other image is
    a probe; top-1 = the nearest template is the probe's identity."""
    emb, labels = l2_normalize(emb), np.asarray(labels)
    ids, first = np.unique(labels, return_index=True)
    probes = np.setdiff1d(np.arange(len(labels)), first)
    if not len(probes) or len(ids) < 2:
        return float("nan")
    nearest = ids[(emb[probes] @ emb[first].T).argmax(1)]
    return float(np.mean(nearest == labels[probes]))


def verification_report(emb: np.ndarray, labels: np.ndarray, threshold: float | None = None) -> dict[str, Any]:
    """TAR@FAR for FARS, ROC AUC, 1:K top-1 and, at a given (calibrated) ``threshold``, the TAR/FAR and
    verification accuracy it gives on these pairs."""
    from sklearn.metrics import roc_auc_score

    gen, imp = pair_scores(emb, labels)
    out: dict[str, Any] = {
        "images": int(len(labels)),
        "identities": int(len(np.unique(labels))),
        "genuine_pairs": int(len(gen)),
        "impostor_pairs": int(len(imp)),
    }
    for far in FARS:
        tar, thr = tar_at_far(gen, imp, far)
        out[f"tar@far={far:g}"] = tar
        out[f"threshold@far={far:g}"] = thr
        out[f"far={far:g}_resolved"] = bool(len(imp) * far >= 1)  # else FAR below 1/n is not measurable here
    out["auc"] = (
        float(roc_auc_score(np.r_[np.ones(len(gen)), np.zeros(len(imp))], np.r_[gen, imp]))
        if len(gen) and len(imp)
        else float("nan")
    )
    out["identify_top1"] = identify_top1(emb, labels)
    if threshold is not None:
        out["at_threshold"] = at_threshold(emb, labels, threshold)
    return out


def at_threshold(emb: np.ndarray, labels: np.ndarray, threshold: float, shots: int = 3) -> dict[str, Any]:
    """What a gallery match threshold gives on these identities: TAR and FAR of probes against ``shots``-shot
    templates (as ``template_scores``), and the accuracy over all those decisions."""
    gen, imp = template_scores(emb, labels, shots)
    n = max(len(gen) + len(imp), 1)
    return {
        "threshold": float(threshold),
        "shots": shots,
        "tar": float(np.mean(gen >= threshold)) if len(gen) else float("nan"),
        "far": float(np.mean(imp >= threshold)) if len(imp) else float("nan"),
        "accuracy": float((np.sum(gen >= threshold) + np.sum(imp < threshold)) / n),
        "genuine": int(len(gen)),
        "impostor": int(len(imp)),
    }


def calibrate_threshold(emb: np.ndarray, labels: np.ndarray, far: float, shots: int = 3) -> dict[str, Any]:
    """Thresholds for a target FAR, set on (validation) identities, with the TAR each implies there:
    ``match`` for 1:K identification against a gallery of ``shots``-shot templates (what ``edgecv run --gallery``
    does; falls back to the pair threshold when too few identities have more than ``shots`` images), ``verify``
    for 1:1 verification of two single photos, and ``track_gate``, the 1:1 threshold at ten times the FAR (at most
    0.1): under it, a face tracked as someone is probably someone else (``runtime/faces/tracks.py``); ``verify``
    itself turns away half of a person's own photo pairs at FAR 1e-3, too many to split a track on."""
    gen, imp = pair_scores(emb, labels)
    verify_tar, verify = tar_at_far(gen, imp, far)
    gate_tar, gate = tar_at_far(gen, imp, min(10 * far, 0.1))
    tgen, timp = template_scores(emb, labels, shots)
    if len(timp) * far < 1:  # the template scores cannot resolve this FAR: use the pairs'
        tgen, timp = gen, imp
    tar, match = tar_at_far(tgen, timp, far)
    return {
        "match": match,
        "verify": verify,
        "target_far": far,
        "shots": shots,
        "tar": tar,
        "far": float(np.mean(timp >= match)) if len(timp) else 0.0,
        "verify_tar": verify_tar,
        "verify_far": float(np.mean(imp >= verify)) if len(imp) else 0.0,
        "track_gate": gate,
        "track_gate_tar": gate_tar,
        "scores": {
            "genuine": int(len(tgen)),
            "impostor": int(len(timp)),
            "genuine_pairs": int(len(gen)),
            "impostor_pairs": int(len(imp)),
        },
        "far_resolved": bool(len(timp) * far >= 1),
    }


def plot_roc(emb: np.ndarray, labels: np.ndarray, path: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    gen, imp = pair_scores(emb, labels)
    fpr, tpr, _ = roc_curve(np.r_[np.ones(len(gen)), np.zeros(len(imp))], np.r_[gen, imp])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.semilogx(np.clip(fpr, 1e-5, 1), tpr)
    for far in FARS:
        ax.axvline(far, color="grey", lw=0.5, ls="--")
    ax.set(
        xlabel="false accept rate (impostor pairs)",
        ylabel="true accept rate (genuine pairs)",
        title=title or f"ROC, {len(gen)} genuine / {len(imp)} impostor pairs",
        xlim=(1e-4, 1),
        ylim=(0, 1.01),
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
