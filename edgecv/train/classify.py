"""``edgecv train`` for ``task: classify``: a classifier by transfer learning (cached frozen-backbone features for
the head, then optional fine-tuning of the top stages), in the run skeleton of ``train/run.py``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import edgecv
from edgecv.data.splits import Split, make_split
from edgecv.evaluate.plots import plot_curves
from edgecv.models import create_backbone
from edgecv.models.classifier import Classifier
from edgecv.recipes import TrainRecipe
from edgecv.train.cache import finetune_sets, split_features
from edgecv.train.distributed import DistInfo, barrier
from edgecv.train.loop import LoopState, Stage, transfer
from edgecv.train.stages import finetune_stage, head_stage

log = logging.getLogger("edgecv")


def _split(recipe: TrainRecipe, out: Path, info: DistInfo, resume: bool) -> Split:
    path = out / "split.json"
    if info.main and not (resume and path.is_file()):
        s = recipe.data.split
        split = make_split(recipe.data.root, s.test, s.val, s.seed, workers=max(2, recipe.train.workers))
        split.save(path)
        if split.skipped:
            log.warning(
                "skipped %d unreadable images (listed in %s), e.g. %s: %s",
                len(split.skipped),
                path,
                split.skipped[0]["file"],
                split.skipped[0]["reason"],
            )
    barrier(info)
    return Split.load(path)


def _meta(model: Classifier, recipe: TrainRecipe, split: Split) -> dict[str, Any]:
    bb = model.backbone
    return {
        "task": "classify",
        "classes": split.classes,
        "backbone": bb.spec.name,
        "weights_source": bb.weights_source,
        "input_size": recipe.data.input_size,
        "mean": list(bb.spec.mean),
        "std": list(bb.spec.std),
        "dropout": recipe.model.dropout,
        "recipe_name": recipe.name,
        "edgecv_version": edgecv.__version__,
    }


def train_classifier(
    rec: TrainRecipe, run_dir: Path, info: DistInfo, last: dict[str, Any] | None, callbacks=()
) -> dict[str, Any]:
    """Train (or, with ``last``, the last.pt being resumed, continue) the classifier ``rec`` describes; the
    metrics of its best checkpoint (rank 0; other ranks get {})."""
    split = _split(rec, run_dir, info, last is not None)
    state = LoopState.from_dict(last["loop"]) if last else LoopState()
    if info.main:
        n, resuming = split.counts(), f" (resuming {state.stage} after epoch {state.epoch})" if last else ""
        sizes = f"{n['train']}/{n['val']}/{n['test']}"
        log.info("run %s: %d classes, train/val/test = %s images%s", run_dir, len(split.classes), sizes, resuming)
    backbone = create_backbone(rec.model.backbone, rec.model.pretrained, rec.model.weights)
    if info.main:
        log.info("backbone %s, ImageNet weights from %s", backbone.spec.name, backbone.weights_source)
    model = Classifier(backbone, len(split.classes), rec.model.dropout).to(info.device)
    if last is not None:
        model.load_state_dict(last["model"])
    model.freeze_body()
    meta = lambda: _meta(model, rec, split)  # noqa: E731
    kw = dict(
        info=info,
        run_dir=run_dir,
        seed=rec.train.seed,
        patience=rec.train.early_stopping,
        checkpoint_meta=meta,
        callbacks=callbacks,
    )

    def head() -> Stage:
        return head_stage(model, rec, info, *split_features(model.backbone, rec, split, run_dir, info))

    def finetune() -> Stage:
        return finetune_stage(model, rec, info, *finetune_sets(rec, split, backbone.spec.mean, backbone.spec.std))

    transfer(state, last, model, head, finetune if rec.train.finetune.epochs > 0 else None, **kw)

    metrics: dict[str, Any] = {}
    if info.main:
        from edgecv.evaluate.run import evaluate_run, write_eval

        metrics = evaluate_run(run_dir, splits=("test", "val"), write=None)
        metrics.update(best=state.best, world_size=info.world)
        write_eval(run_dir, metrics, "metrics.json", ("test", "val"), split.classes)
        plot_curves(state.history, run_dir / "curves.png")
    return metrics
