"""Evaluate a run directory's best checkpoint on its recorded split and on extra named test sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from edgecv._quiet import progress
from edgecv.data.augment import eval_transform, tta_views
from edgecv.data.dataset import ImageListDataset, collate_skip_unreadable
from edgecv.data.imagefolder import UnreadableImage, read_rgb
from edgecv.data.splits import Split, folder_as_split
from edgecv.errors import EdgecvError
from edgecv.evaluate.classify import classification_metrics
from edgecv.evaluate.plots import plot_confusion
from edgecv.models.classifier import Classifier
from edgecv.models.loading import load_classifier
from edgecv.models.run_meta import ClassifierMeta
from edgecv.recipes import load_recipe


@torch.no_grad()
def predict_logits(
    model: nn.Module, dataset: ImageListDataset, batch_size: int, workers: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels over the whole dataset in order, unreadable images skipped (under DDP every rank
    evaluates all of it, so their decisions agree)."""
    model.eval()
    logits, labels = [], []
    for batch, _ in DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_skip_unreadable):
        if batch is None:
            continue
        x, y, _ = batch
        logits.append(model(x.to(device)).float().cpu())
        labels.append(y)
    if not logits:
        return torch.zeros(0, 1), torch.zeros(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(labels)


@torch.no_grad()
def tta_scores(model: Classifier, root: Path, files: list[str], meta: ClassifierMeta) -> tuple[np.ndarray, list[int]]:
    """Softmax averaged over flip + multi-crop views; returns scores and the indices that were readable."""
    out, kept = [], []
    for i, rel in enumerate(progress(files, desc="tta", disable=None, leave=False)):
        try:
            rgb = read_rgb(root / rel)
        except UnreadableImage:
            continue
        views = torch.from_numpy(tta_views(rgb, meta.input_size, meta.mean, meta.std))
        out.append(model(views).softmax(1).mean(0).numpy())
        kept.append(i)
    return np.stack(out) if out else np.zeros((0, len(meta.classes))), kept


def score_split(
    model: Classifier,
    meta: ClassifierMeta,
    split: Split,
    name: str,
    root: Path,
    tta: bool = False,
    batch_size: int = 32,
    workers: int = 0,
) -> dict[str, Any]:
    files, labels = split.files[name], split.labels[name]
    if tta:
        scores, kept = tta_scores(model, root, files, meta)
        y = np.asarray(labels)[kept]
    else:
        ds = ImageListDataset(root, files, labels, eval_transform(meta.input_size, meta.mean, meta.std))
        logits, y_t = predict_logits(model, ds, batch_size, workers)
        scores, y = logits.softmax(1).numpy(), y_t.numpy()
    if not len(y):
        raise EdgecvError(f"{root}: none of the {len(files)} {name} images could be read; nothing written")
    m = classification_metrics(scores, y, list(meta.classes))
    m["unreadable"] = len(files) - len(y)
    return m


def evaluate_run(
    run_dir: str | Path,
    data: str | None = None,
    split: str = "test",
    tta: bool = False,
    splits: tuple[str, ...] | None = None,
    write: str | None = "eval.json",
) -> dict[str, Any]:
    """Metrics of ``run_dir/best.pt`` on ``split`` (or ``splits``) of the recorded split.json, plus every
    extra test set the recipe names. ``data``: the folder the recorded file lists are in now (default: where
    they were, or the same place relative to the run)."""
    run_dir = Path(run_dir)
    model, meta = load_classifier(run_dir / "best.pt")
    rec = Split.load(run_dir / "split.json", data)
    recipe = load_recipe(run_dir / "recipe.yaml")
    root = Path(rec.root)
    wanted = splits or (split,)
    for s in wanted:
        if s not in rec.files:
            raise EdgecvError(f"{run_dir}/split.json: no split {s!r}; recorded: {', '.join(rec.files)}")
    result: dict[str, Any] = {"task": "classify", "tta": tta}
    for s in wanted:
        result[s] = score_split(model, meta, rec, s, root, tta)
    result["extra"] = {}
    for name, folder in recipe.data.extra_test.items():
        extra = folder_as_split(folder, list(meta.classes), name)
        result["extra"][name] = score_split(model, meta, extra, name, Path(extra.root), tta)
        result["extra"][name]["skipped_files"] = extra.skipped
    result["data"] = {"skipped_at_split": len(rec.skipped), "counts": rec.counts()}
    if write:
        write_eval(run_dir, result, write, wanted, list(meta.classes))
    return result


def write_eval(run_dir: Path, result: dict[str, Any], name: str, splits: tuple[str, ...], classes: list[str]) -> None:
    """The metrics as JSON, and a confusion-matrix PNG per split."""
    (run_dir / name).write_text(json.dumps(result, indent=1))
    tta = "_tta" if result.get("tta") else ""
    for s in splits:
        suffix = ("" if s == "test" else f"_{s}") + tta
        plot_confusion(
            result[s]["confusion_matrix"],
            classes,
            run_dir / f"confusion_matrix{suffix}.png",
            f"{s}{' (tta)' if tta else ''} top-1 {result[s]['top1']:.3f}",
        )
