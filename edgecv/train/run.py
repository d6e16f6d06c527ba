"""``edgecv train``: recipe -> run directory with best.pt, last.pt, recipe.yaml, split.json, metrics.json,
curves.png and confusion_matrix.png. Works unchanged under ``torchrun --nproc_per_node=N``."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edgecv
from edgecv.data.augment import TrainTransform, eval_transform
from edgecv.data.dataset import ImageListDataset
from edgecv.data.splits import Split, make_split
from edgecv.errors import EdgecvError
from edgecv.evaluate.plots import plot_curves
from edgecv.models import create_backbone
from edgecv.models.classifier import Classifier
from edgecv.recipes import TrainRecipe, dump_recipe, load_recipe
from edgecv.train.cache import split_features
from edgecv.models.loading import load_checkpoint
from edgecv.train.distributed import DistInfo, barrier, init_distributed, shutdown
from edgecv.train.loop import EpochCallback, LoopState, Stage, fit, seed_everything
from edgecv.train.stages import finetune_stage, head_stage

log = logging.getLogger("edgecv")
RUN_FILES = ("best.pt", "last.pt", "recipe.yaml", "split.json", "metrics.json", "eval.json", "curves.png",
             "confusion_matrix.png", "confusion_matrix_val.png", "cache", "pr_curve.png", "predictions.jpg", "roc.png")


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    resumed_from: str | None


def _with_epochs(recipe: TrainRecipe, epochs: int) -> TrainRecipe:
    """``--epochs N``: N epochs for every enabled stage (fine-tuning stays off when the recipe has it off)."""
    if epochs < 0:
        raise EdgecvError(f"--epochs must be >= 0, got {epochs}")
    t = recipe.train
    head = t.head.model_copy(update={"epochs": epochs})
    ft = t.finetune.model_copy(update={"epochs": epochs}) if t.finetune.epochs > 0 else t.finetune
    return recipe.model_copy(update={"train": t.model_copy(update={"head": head, "finetune": ft})})


def _resolve_recipe(recipe_path: str, out: str | None, resume: bool, epochs: int | None, data: str | None,
                    overrides: tuple[str, ...]) -> tuple[TrainRecipe, Path]:
    """The recipe this run trains and its directory. On --resume the run's own recipe.yaml is authoritative."""
    sets = list(overrides) + ([f"data.root={data!r}"] if data is not None else [])
    recipe = None if (resume and out) else load_recipe(recipe_path, sets)
    run_dir = Path(out) if out else Path("runs") / recipe.name
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise EdgecvError(f"{run_dir}: nothing to resume (no last.pt); run without --resume to start")
        recipe = load_recipe(run_dir / "recipe.yaml", sets)
    return (_with_epochs(recipe, epochs) if epochs is not None else recipe), run_dir


def _prepare_run_dir(recipe: TrainRecipe, out: Path, resume: bool, overwrite: bool, info: DistInfo) -> None:
    if not resume:
        existing = [f for f in RUN_FILES if (out / f).exists()]
        barrier(info)  # every rank has looked before rank 0 writes anything
        if existing and not overwrite:
            raise EdgecvError(f"{out}: already holds a run ({', '.join(existing[:3])}...); "
                              "pass --resume to continue it, --overwrite to replace it, or another --out")
    if info.main:
        if not resume and overwrite:
            for f in RUN_FILES:
                p = out / f
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        dump_recipe(recipe, out / "recipe.yaml")


def _split(recipe: TrainRecipe, out: Path, info: DistInfo, resume: bool) -> Split:
    path = out / "split.json"
    if info.main and not (resume and path.is_file()):
        s = recipe.data.split
        split = make_split(recipe.data.root, s.test, s.val, s.seed, workers=max(2, recipe.train.workers))
        split.save(path)
        if split.skipped:
            log.warning("skipped %d unreadable images (listed in %s), e.g. %s: %s", len(split.skipped), path,
                        split.skipped[0]["file"], split.skipped[0]["reason"])
    barrier(info)
    return Split.load(path)


def _meta(model: Classifier, recipe: TrainRecipe, split: Split) -> dict[str, Any]:
    bb = model.backbone
    return {"task": "classify", "classes": split.classes, "backbone": bb.spec.name,
            "weights_source": bb.weights_source, "input_size": recipe.data.input_size, "mean": list(bb.spec.mean),
            "std": list(bb.spec.std), "dropout": recipe.model.dropout, "recipe_name": recipe.name,
            "edgecv_version": edgecv.__version__}


def _restore(stage: Stage, state: LoopState, last: dict[str, Any] | None) -> None:
    if last is not None and last["loop"]["stage"] == stage.name and state.epoch > 0:
        stage.optimizer.load_state_dict(last["optimizer"])
        stage.scheduler.load_state_dict(last["scheduler"])


def train(recipe: str, data: str | None = None, epochs: int | None = None, out: str | None = None,
          device: str = "cpu", resume: bool = False, overwrite: bool = False, overrides: tuple[str, ...] = (),
          callbacks: list[EpochCallback] | tuple = ()) -> RunResult:
    """Train the classifier a recipe describes; ``--epochs`` sets the epochs of every enabled stage."""
    info = init_distributed(device)
    try:
        rec, run_dir = _resolve_recipe(recipe, out, resume, epochs, data, overrides)
        _prepare_run_dir(rec, run_dir, resume, overwrite, info)
        seed_everything(rec.train.seed)
        if rec.task in ("detect", "embed"):
            if rec.task == "detect":
                from edgecv.train.detect import train_detector as train_task
            else:
                from edgecv.train.embed import train_embedder as train_task

            last = load_checkpoint(run_dir / "last.pt") if resume else None
            metrics = train_task(rec, run_dir, info, last, callbacks)
            return RunResult(run_dir, metrics, f"{last['loop']['stage']}@{last['loop']['epoch']}" if last else None)
        split = _split(rec, run_dir, info, resume)
        last = load_checkpoint(run_dir / "last.pt") if resume else None
        state = LoopState.from_dict(last["loop"]) if last else LoopState()
        if info.main:
            counts = split.counts()
            log.info("run %s: %d classes, train/val/test = %d/%d/%d images%s", run_dir, len(split.classes),
                     counts["train"], counts["val"], counts["test"],
                     f" (resuming {state.stage} after epoch {state.epoch})" if last else "")
        backbone = create_backbone(rec.model.backbone, rec.model.pretrained, rec.model.weights)
        if info.main:
            log.info("backbone %s, ImageNet weights from %s", backbone.spec.name, backbone.weights_source)
        model = Classifier(backbone, len(split.classes), rec.model.dropout).to(info.device)
        if last is not None:
            model.load_state_dict(last["model"])
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        meta = lambda: _meta(model, rec, split)  # noqa: E731
        kw = dict(info=info, run_dir=run_dir, seed=rec.train.seed, patience=rec.train.early_stopping,
                  checkpoint_meta=meta, callbacks=callbacks)

        if state.stage == "head":
            train_f, val_f = split_features(model.backbone, rec, split, run_dir, info)
            stage = head_stage(model, rec, info, train_f, val_f)
            _restore(stage, state, last)
            fit(stage, state, **kw)
            state.stage, state.epoch, state.bad_epochs, state.stopped_early = "finetune", 0, 0, False
        if rec.train.finetune.epochs > 0:
            if state.epoch == 0:  # stage 2 starts from stage 1's best head
                barrier(info)  # rank 0 has finished writing best.pt
                model.load_state_dict(load_checkpoint(run_dir / "best.pt")["model"])
            mean, std, size = backbone.spec.mean, backbone.spec.std, rec.data.input_size
            root = Path(split.root)
            train_ds = ImageListDataset(root, split.files["train"], split.labels["train"],
                                        TrainTransform(rec.augment, size, mean, std))
            val_ds = ImageListDataset(root, split.files["val"], split.labels["val"], eval_transform(size, mean, std))
            stage = finetune_stage(model, rec, info, train_ds, val_ds)
            _restore(stage, state, last)
            fit(stage, state, **kw)

        metrics: dict[str, Any] = {}
        if info.main:
            from edgecv.evaluate.run import evaluate_run, write_eval

            metrics = evaluate_run(run_dir, splits=("test", "val"), write=None)
            metrics.update(best=state.best, world_size=info.world)
            write_eval(run_dir, metrics, "metrics.json", ("test", "val"), split.classes)
            plot_curves(state.history, run_dir / "curves.png")
        barrier(info)
        return RunResult(run_dir, metrics, f"{last['loop']['stage']}@{last['loop']['epoch']}" if last else None)
    finally:
        shutdown(info)
