"""Evaluate a face-embedder run on its recorded split (identities never trained on): metrics.json with TAR@FAR,
ROC AUC, 1:K top-1 and the calibrated threshold's TAR/FAR on these pairs; roc.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgecv.artifact import ArtifactMeta
from edgecv.data.imagefolder import read_rgb
from edgecv.data.splits import Split
from edgecv.errors import EdgecvError
from edgecv.evaluate.embed import plot_roc, verification_report
from edgecv.models.embedder import Embedder
from edgecv.models.loading import embedder_meta, load_embedder
from edgecv.runtime.preprocess import prepare_frame


@torch.no_grad()
def embed_files(model: Embedder, meta: ArtifactMeta, root: str | Path, files: list[str], batch: int = 64) -> np.ndarray:
    """Embeddings of image files prepared by the device's own ``prepare_frame`` (what the artifacts will see)."""
    model.eval()
    out = []
    for i in range(0, len(files), batch):
        x = np.stack([prepare_frame(read_rgb(Path(root) / f), meta)[0] for f in files[i : i + batch]])
        out.append(model(torch.from_numpy(x)).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.dim), np.float32)


def evaluate_embedder(
    run_dir: str | Path, split: str = "test", write: bool = True, data: str | Path | None = None
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    model, ck = load_embedder(run_dir / "best.pt")
    sp = Split.load(run_dir / "split.json", data)
    if not sp.files.get(split):
        raise EdgecvError(f"{run_dir}/split.json: split {split!r} is empty or missing")
    labels = np.asarray(sp.labels[split])
    emb = embed_files(model, embedder_meta(model, ck), sp.root, sp.files[split])
    thr = (ck.threshold or {}).get("match")
    result: dict[str, Any] = {
        "task": "embed",
        split: verification_report(emb, labels, thr),
        "threshold": ck.threshold,
        "data": {
            "counts": sp.counts(),
            "skipped_at_split": len(sp.skipped),
            "identities": {k: len(set(v)) for k, v in sp.labels.items()},
        },
    }
    if write:
        (run_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=float))
        plot_roc(
            emb,
            labels,
            run_dir / "roc.png",
            f"{split}: TAR {result[split]['tar@far=0.01']:.3f} @ FAR 1e-2, AUC {result[split]['auc']:.3f}",
        )
    return result
