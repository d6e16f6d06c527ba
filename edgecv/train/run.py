"""``edgecv train``: recipe -> run directory with best.pt, last.pt, recipe.yaml, split.json, metrics.json,
curves.png and confusion_matrix.png. Works unchanged under ``torchrun --nproc_per_node=N``."""

from __future__ import annotations

import logging
import shutil
import tempfile
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
RUN_FILES = (
    "best.pt",
    "last.pt",
    "recipe.yaml",
    "split.json",
    "metrics.json",
    "eval.json",
    "curves.png",
    "confusion_matrix.png",
    "confusion_matrix_val.png",
    "cache",
    "pr_curve.png",
    "predictions.jpg",
    "roc.png",
)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    resumed_from: str | None
    task: str  # the recipe's task: its Task prints the metrics


def _with_epochs(recipe: TrainRecipe, epochs: int) -> TrainRecipe:
    """``--epochs N``: N epochs for every enabled stage (fine-tuning stays off when the recipe has it off)."""
    if epochs < 0:
        raise EdgecvError(f"--epochs must be >= 0, got {epochs}")
    t = recipe.train
    head = t.head.model_copy(update={"epochs": epochs})
    ft = t.finetune.model_copy(update={"epochs": epochs}) if t.finetune.epochs > 0 else t.finetune
    return recipe.model_copy(update={"train": t.model_copy(update={"head": head, "finetune": ft})})


def _resolve_recipe(
    recipe_path: str, out: str | None, resume: bool, epochs: int | None, data: str | None, overrides: tuple[str, ...]
) -> tuple[TrainRecipe, Path, bool]:
    """The recipe this run trains, its directory, and whether there is a checkpoint to continue from. On --resume
    the run's own recipe.yaml is authoritative; a run stopped before its first checkpoint starts again."""
    sets = list(overrides) + ([f"data.root={data!r}"] if data is not None else [])
    recipe = None if (resume and out) else load_recipe(recipe_path, sets)
    run_dir = Path(out) if out else Path("runs") / recipe.name
    continues = resume and (run_dir / "last.pt").is_file()
    if resume and not continues and not (run_dir / "recipe.yaml").is_file():
        raise EdgecvError(f"{run_dir}: nothing to resume (no run there); run without --resume to start")
    if resume:
        recipe = load_recipe(run_dir / "recipe.yaml", sets)
    return (_with_epochs(recipe, epochs) if epochs is not None else recipe), run_dir, continues


def _unfinished(out: Path) -> bool:
    """A run started and stopped before its first checkpoint: its recipe (and maybe split and cache), no .pt."""
    return (out / "recipe.yaml").is_file() and not any((out / f).exists() for f in ("best.pt", "last.pt"))


def _same_recipe(recipe: TrainRecipe, out: Path) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        dump_recipe(recipe, Path(tmp) / "r.yaml")
        return (Path(tmp) / "r.yaml").read_bytes() == (out / "recipe.yaml").read_bytes()


def _prepare_run_dir(recipe: TrainRecipe, out: Path, resume: bool, continues: bool, overwrite: bool, info: DistInfo) -> None:
    """``resume``: --resume was given; ``continues``: there is a last.pt to continue from. A run stopped before its
    first checkpoint starts again, with --resume or with the same recipe, keeping its cache."""
    if not continues:
        existing = [f for f in RUN_FILES if (out / f).exists()]
        restart = bool(existing) and not overwrite and _unfinished(out)
        barrier(info)  # every rank has looked before rank 0 writes anything
        if restart and not resume and not _same_recipe(recipe, out):
            raise EdgecvError(
                f"{out}: holds an unfinished run of a different recipe (no checkpoint yet); "
                "pass --overwrite to replace it, or another --out"
            )
        if restart:
            log.info("%s: an earlier start stopped before its first checkpoint; starting again%s", out, _cache_note(out))
        elif existing and not overwrite and not resume:
            raise EdgecvError(
                f"{out}: already holds a run ({', '.join(existing[:3])}...); "
                "pass --resume to continue it, --overwrite to replace it, or another --out"
            )
    if info.main:
        if overwrite:
            for f in RUN_FILES:
                p = out / f
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        dump_recipe(recipe, out / "recipe.yaml")


def _cache_note(run_dir: Path) -> str:
    n = len(list((run_dir / "cache").glob("*.pt")))
    return f" ({n} cached feature file(s) in {run_dir}/cache are reused where still valid)" if n else ""


def interrupted_message(run_dir: Path, resume_hint: str) -> str:
    """What Ctrl-C left in ``run_dir``, as it is on disk."""
    if not (run_dir / "last.pt").is_file():
        return f"no epoch had finished, so {run_dir} holds no checkpoint; run the same command again to start over" + _cache_note(
            run_dir
        )
    try:
        loop = load_checkpoint(run_dir / "last.pt")["loop"]
    except (OSError, RuntimeError, KeyError, EdgecvError):
        return f"{run_dir}/last.pt cannot be read; pass --overwrite to start over"
    return f"{run_dir}/last.pt holds {loop['stage']} epoch {loop['epoch']}; continue with {resume_hint}"


def train(
    recipe: str,
    data: str | None = None,
    epochs: int | None = None,
    out: str | None = None,
    device: str = "cpu",
    resume: bool = False,
    overwrite: bool = False,
    overrides: tuple[str, ...] = (),
    callbacks: list[EpochCallback] | tuple = (),
) -> RunResult:
    """Train what a recipe describes (its task's trainer, in this run skeleton); ``--epochs`` sets the epochs of
    every enabled stage."""
    if resume and overwrite:
        raise EdgecvError(
            "--resume and --overwrite contradict each other (--resume continues the run in --out, "
            "--overwrite deletes it); pass one"
        )
    info = init_distributed(device)
    if not info.main:  # rank 0 speaks for the run; the others only report their errors
        log.setLevel(logging.ERROR)
    try:
        rec, run_dir, continues = _resolve_recipe(recipe, out, resume, epochs, data, overrides)
        _prepare_run_dir(rec, run_dir, resume, continues, overwrite, info)
        seed_everything(rec.train.seed)
        last = load_checkpoint(run_dir / "last.pt") if continues else None
        try:
            metrics = get_task(rec.task).train(rec, run_dir, info, last, callbacks)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(interrupted_message(run_dir, f"`edgecv train {recipe} --out {run_dir} --resume`"))
        barrier(info)
        resumed = f"{last['loop']['stage']}@{last['loop']['epoch']}" if last else None
        return RunResult(run_dir, metrics, resumed, rec.task)
    finally:
        shutdown(info)
