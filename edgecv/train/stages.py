"""The two transfer-learning stages for a classifier.

Stage 1 ("head"): the backbone is frozen; the new head trains on cached features.
Stage 2 ("finetune"): the top N backbone stages are unfrozen and trained end to end at a lower LR;
BatchNorm in the still-frozen part stays in eval mode (its running statistics are ImageNet's).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from edgecv._quiet import progress
from edgecv.data.dataset import ImageListDataset
from edgecv.evaluate.run import predict_logits
from edgecv.models._transfer import TransferModel
from edgecv.models.classifier import Classifier
from edgecv.recipes import TrainRecipe
from edgecv.train.cache import FeatureSet, make_loader
from edgecv.train.distributed import DistInfo
from edgecv.train.loop import Stage, cosine_schedule, epoch_seed, optimizer_step


def _accuracy_and_loss(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    if len(labels) == 0:
        return {}
    return {"top1": float((logits.argmax(1) == labels).float().mean()), "loss": float(F.cross_entropy(logits, labels))}


def head_stage(model: Classifier, recipe: TrainRecipe, info: DistInfo, train: FeatureSet, val: FeatureSet) -> Stage:
    spec = recipe.train
    head = nn.Sequential(model.dropout, model.head)
    net: nn.Module = DDP(head) if info.world > 1 else head
    opt = torch.optim.AdamW(head.parameters(), lr=spec.head.lr, weight_decay=spec.head.weight_decay)
    per_rank = math.ceil(len(train.labels) / info.world)
    steps = math.ceil(per_rank / spec.batch_size)
    sched = cosine_schedule(opt, spec.head.epochs * steps, warmup=min(steps, 50))
    x_all, y_all = train.features.to(info.device), train.labels.to(info.device)
    x_val, y_val = val.features.to(info.device), val.labels.to(info.device)

    def train_epoch(epoch: int) -> dict[str, float]:
        net.train()
        g = torch.Generator().manual_seed(epoch_seed(spec.seed, "head", epoch))
        order = torch.randperm(len(y_all), generator=g)
        order = torch.cat([order, order[: (-len(order)) % info.world]])[info.rank :: info.world]  # equal steps per rank
        total, n = 0.0, 0
        for i in range(0, len(order), spec.batch_size):
            b = order[i : i + spec.batch_size].to(info.device)
            loss = F.cross_entropy(net(x_all[b]), y_all[b], label_smoothing=spec.label_smoothing)
            total += optimizer_step(opt, sched, loss) * len(b)
            n += len(b)
        return {"loss": total / max(n, 1)}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        head.eval()
        return _accuracy_and_loss(head(x_val), y_val)

    return Stage("head", spec.head.epochs, model, opt, sched, train_epoch, validate)


def set_trainable(model: TransferModel, unfreeze: int) -> list[nn.Module]:
    """Freeze the backbone except its last ``unfreeze`` stages; return the unfrozen modules."""
    model.freeze_body()
    units = model.units()
    unfrozen = [m for group in units[-unfreeze:] for m in group]
    for m in unfrozen:
        for p in m.parameters():
            p.requires_grad_(True)
    return unfrozen


def train_mode_with_frozen_bn(model: TransferModel, unfrozen: list[nn.Module]) -> None:
    model.train()
    model.body.eval()  # frozen BatchNorm keeps ImageNet statistics (and frozen dropout is off)
    for m in unfrozen:
        m.train()


def finetune_stage(
    model: Classifier, recipe: TrainRecipe, info: DistInfo, train_ds: ImageListDataset, val_ds: ImageListDataset
) -> Stage:
    spec = recipe.train
    ft = spec.finetune
    unfrozen = set_trainable(model, ft.unfreeze_blocks)
    params = [p for p in model.parameters() if p.requires_grad]
    net: nn.Module = DDP(model) if info.world > 1 else model
    opt = torch.optim.AdamW(params, lr=ft.lr, weight_decay=ft.weight_decay)
    steps = math.ceil(math.ceil(len(train_ds) / info.world) / spec.batch_size)
    sched = cosine_schedule(opt, ft.epochs * steps, warmup=min(steps, 20))

    def train_epoch(epoch: int) -> dict[str, float]:
        train_mode_with_frozen_bn(model, unfrozen)
        seed = epoch_seed(spec.seed, "finetune", epoch)
        loader = make_loader(train_ds, spec.batch_size, spec.workers, seed, info, shuffle=True)
        total, n = 0.0, 0
        for batch, _ in progress(
            loader, desc=f"finetune {epoch + 1}/{ft.epochs}", disable=None if info.main else True, leave=False
        ):
            if batch is None:
                continue
            x, y, _ = batch
            x, y = x.to(info.device), y.to(info.device)
            loss = F.cross_entropy(net(x), y, label_smoothing=spec.label_smoothing)
            total += optimizer_step(opt, sched, loss) * len(y)
            n += len(y)
        return {"loss": total / max(n, 1)}

    def validate() -> dict[str, float]:
        logits, labels = predict_logits(model, val_ds, spec.batch_size, spec.workers, info.device)
        return _accuracy_and_loss(logits, labels)

    return Stage("finetune", ft.epochs, model, opt, sched, train_epoch, validate)
