"""Evaluate a detector run on its recorded test split: metrics.json (mAP50, mAP50-95, AP per class, label report),
pr_curve.png and predictions.jpg (test images with their detections drawn)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgecv.artifact import ArtifactMeta
from edgecv.data.detection import DetectionSet, load_detection
from edgecv.data.splits import Split
from edgecv.evaluate.detect import Evaluator, draw_samples, plot_pr
from edgecv.models.loading import detector_meta, load_detector
from edgecv.recipes import load_recipe
from edgecv.runtime.preprocess import prepare_frame


def run_dataset(run_dir: Path, root: str | Path, files: list[str] | None = None) -> DetectionSet:
    """The run's dataset, in ``root`` (where its split's files are now) with the annotations its recipe names (only
    ``files``, when given: no decoding the rest)."""
    rec = load_recipe(run_dir / "recipe.yaml")
    return load_detection(root, rec.data.annotations, only=files)


@torch.no_grad()
def predict_files(model, meta: ArtifactMeta, ds: DetectionSet, files: list[str], batch: int = 16):
    """Raw outputs (boxes, scores) of ``model`` on ``files``, prepared by the device's own ``prepare_frame``; and
    the RGB images."""
    from edgecv.data.imagefolder import read_rgb

    images = [read_rgb(ds.root / f) for f in files]
    boxes, scores = [], []
    for i in range(0, len(images), batch):
        x = np.stack([prepare_frame(im, meta)[0] for im in images[i : i + batch]])
        b, s = model(torch.from_numpy(x))
        boxes.append(b)
        scores.append(s)
    return torch.cat(boxes), torch.cat(scores), images


def evaluate_detector(
    run_dir: str | Path, ds: DetectionSet | None = None, split: str = "test", write: bool = True, data: str | Path | None = None
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    model, ck = load_detector(run_dir / "best.pt")
    rec = Split.load(run_dir / "split.json", data)
    files = rec.files[split]
    ds = ds or run_dataset(run_dir, rec.root, files)
    meta = detector_meta(model, ds.classes, ck.mean, ck.std)
    boxes, scores, images = predict_files(model, meta, ds, files)
    metrics, dets = Evaluator(ds, files, model.input_size)(boxes, scores)
    result = {"task": "detect", "split": split, **metrics, "labels_report": ds.report.to_dict()}
    if write:
        plot_pr(metrics, ds.classes, run_dir / "pr_curve.png")
        draw_samples(images[:8], dets[:8], run_dir / "predictions.jpg")
        out = {k: v for k, v in result.items() if k != "pr50"}
        tmp = run_dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(out, indent=1, default=float))
        tmp.replace(run_dir / "metrics.json")
    return result
