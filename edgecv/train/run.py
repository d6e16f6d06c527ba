"""``edgecv train``: recipe -> run directory with best.pt, last.pt, recipe.yaml, split.json, metrics.json,
curves.png and confusion_matrix.png. Works unchanged under ``torchrun --nproc_per_node=N``."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecv.errors import EdgecvError
from edgecv.models.loading import load_checkpoint
from edgecv.recipes import TrainRecipe, dump_recipe, load_recipe
from edgecv.tasks import get_task
from edgecv.train.distributed import DistInfo, barrier, init_distributed, shutdown
from edgecv.train.loop import EpochCallback, seed_everything

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


def train(recipe: str, data: str | None = None, epochs: int | None = None, out: str | None = None,
          device: str = "cpu", resume: bool = False, overwrite: bool = False, overrides: tuple[str, ...] = (),
          callbacks: list[EpochCallback] | tuple = ()) -> RunResult:
    """Train what a recipe describes (its task's trainer, in this run skeleton); ``--epochs`` sets the epochs of
    every enabled stage."""
    info = init_distributed(device)
    try:
        rec, run_dir = _resolve_recipe(recipe, out, resume, epochs, data, overrides)
        _prepare_run_dir(rec, run_dir, resume, overwrite, info)
        seed_everything(rec.train.seed)
        last = load_checkpoint(run_dir / "last.pt") if resume else None
        metrics = get_task(rec.task).train(rec, run_dir, info, last, callbacks)
        barrier(info)
        return RunResult(run_dir, metrics, f"{last['loop']['stage']}@{last['loop']['epoch']}" if last else None)
    finally:
        shutdown(info)
