"""The shared epoch loop: seeding, validation, best/last checkpoints, early stopping, resume, callbacks.

Every task trains by ``transfer`` (head stage, then fine-tuning from its best checkpoint), and every stage runs
through ``fit``: a stage supplies ``train_epoch`` and ``validate``; the loop owns everything that must be
identical between them (and between a run and its resume).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgecv.models.loading import load_checkpoint
from edgecv.train.checkpoint import save_atomic
from edgecv.train.distributed import DistInfo, barrier, broadcast_flag

log = logging.getLogger("edgecv")
EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class LoopState:
    """What a resume needs beyond the weights: where we are, the best so far, the curves."""

    stage: str = "head"
    epoch: int = 0  # epochs completed in ``stage``
    best: dict[str, Any] | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "epoch": self.epoch,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LoopState":
        return cls(**d)


@dataclass
class Stage:
    name: str
    epochs: int
    model: nn.Module  # what best.pt/last.pt store (the whole task model)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train_epoch: Callable[[int], dict[str, float]]  # epoch -> {"loss": ...}
    validate: Callable[[], dict[str, float]]  # -> {metric: ..., "loss": ...} or {} when there is no val split
    metric: str = "top1"  # what selects best.pt (higher is better): top1 for classifiers, map50_95 for detectors


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(base: int, stage: str, epoch: int) -> int:
    """A seed per (stage, epoch): a resumed run draws exactly what the uninterrupted run drew."""
    return (base * 1_000_003 + (0 if stage == "head" else 500_009) + epoch) % 2**31


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup: int = 0):
    total_steps = max(1, total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def optimizer_step(opt: torch.optim.Optimizer, sched, loss: torch.Tensor) -> float:
    """Backward, step and schedule; returns the loss value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return float(loss.detach())


def _improved(val: dict[str, float], best: dict[str, Any] | None, metric: str) -> bool:
    if best is None:
        return True
    if not val:  # no val split: the latest epoch is the best we know
        return True
    return (val[metric], -val["loss"]) > (best[f"val_{metric}"], -best["val_loss"])


def _save(stage: Stage, state: LoopState, meta: dict[str, Any], run_dir: Path, improved: bool) -> None:
    """last.pt every epoch (what a resume continues from); best.pt when the epoch improved on the best."""
    weights = {k: v.detach().cpu() for k, v in stage.model.state_dict().items()}
    if improved:
        save_atomic({"model": weights, "meta": meta, "best": state.best}, run_dir / "best.pt")
    last = {
        "model": weights,
        "meta": meta,
        "loop": state.to_dict(),
        "optimizer": stage.optimizer.state_dict(),
        "scheduler": stage.scheduler.state_dict(),
    }
    save_atomic(last, run_dir / "last.pt")


def fit(
    stage: Stage,
    state: LoopState,
    info: DistInfo,
    run_dir: Path,
    seed: int,
    patience: int,
    checkpoint_meta: Callable[[], dict[str, Any]],
    callbacks: list[EpochCallback] | tuple = (),
) -> LoopState:
    """Run ``stage`` from ``state.epoch`` to ``stage.epochs``; write last.pt every epoch, best.pt on improvement."""
    while state.epoch < stage.epochs and not state.stopped_early:
        epoch = state.epoch
        seed_everything(epoch_seed(seed, stage.name, epoch))
        train = stage.train_epoch(epoch)
        val = stage.validate()
        row = {"stage": stage.name, "epoch": epoch + 1, "train_loss": train["loss"], "lr": stage.optimizer.param_groups[0]["lr"]}
        if val:
            row.update({"val_loss": val["loss"], f"val_{stage.metric}": val[stage.metric]})
        state.history.append(row)
        state.epoch = epoch + 1
        improved = _improved(val, state.best, stage.metric)
        if improved:
            state.best = {
                "stage": stage.name,
                "epoch": epoch + 1,
                f"val_{stage.metric}": val.get(stage.metric, float("nan")),
                "val_loss": val.get("loss", float("nan")),
            }
            state.bad_epochs = 0
        else:
            state.bad_epochs += 1
        stop = bool(patience) and bool(val) and state.bad_epochs >= patience
        state.stopped_early = broadcast_flag(info, stop)
        if info.main:
            _save(stage, state, checkpoint_meta(), run_dir, improved)
            val_txt = f"  val {stage.metric} {val[stage.metric]:.4f}  val loss {val['loss']:.4f}" if val else ""
            progress = f"{stage.name} {epoch + 1}/{stage.epochs}  train loss {train['loss']:.4f}"
            log.info("%s%s%s", progress, val_txt, "  *best" if improved else "")
        for cb in callbacks:
            cb(row)
    return state


def _fit_resumed(stage: Stage, state: LoopState, last: dict[str, Any] | None, fit_kw: dict[str, Any]) -> None:
    """``fit``, with the optimizer and schedule of a stage stopped mid-way given back from ``last``."""
    if last is not None and last["loop"]["stage"] == stage.name and state.epoch > 0:
        stage.optimizer.load_state_dict(last["optimizer"])
        stage.scheduler.load_state_dict(last["scheduler"])
    fit(stage, state, **fit_kw)


def transfer(
    state: LoopState,
    last: dict[str, Any] | None,
    weights: nn.Module,
    head: Callable[[], Stage],
    finetune: Callable[[], Stage] | None,
    **fit_kw: Any,
) -> LoopState:
    """The transfer-learning schedule every task trains by: the head stage on the frozen body (skipped by a run
    resumed in fine-tuning), then, when the recipe fine-tunes, fine-tuning from the head stage's best checkpoint.
    ``head``/``finetune`` build their stage when it is reached (a head stage's feature cache is only computed when
    it runs); ``weights``: the module best.pt holds; ``fit_kw``: ``fit``'s other arguments."""
    if state.stage == "head":
        _fit_resumed(head(), state, last, fit_kw)
        state.stage, state.epoch, state.bad_epochs, state.stopped_early = "finetune", 0, 0, False
    if finetune is not None:
        if state.epoch == 0:  # fine-tuning starts from the head stage's best weights
            barrier(fit_kw["info"])  # rank 0 has written best.pt
            weights.load_state_dict(load_checkpoint(Path(fit_kw["run_dir"]) / "best.pt")["model"])
        _fit_resumed(finetune(), state, last, fit_kw)
    return state
