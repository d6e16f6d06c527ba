"""``edgecv train`` for ``task: embed``: a face embedder by transfer learning, with the run directory, checkpoints,
resume and epoch loop every task shares.

1. backbone frozen: pooled features of every train image (plain + ``cache_augmentations`` augmented copies) are
   cached once; the BN-dropout-FC-BN head trains on them with ArcFace (additive angular margin) and/or the
   batch-hard triplet loss (pytorch-metric-learning), batches of P identities x K images;
2. fine-tune (optional): the last ``unfreeze_blocks`` backbone stages train too, on freshly augmented images.

The split is by identity (val and test people are never trained on). best.pt is chosen by val TAR@FAR=1e-2; the
match threshold is then calibrated on val pairs to ``target_far`` and stored in best.pt for export.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import edgecv
from edgecv._deps import require
from edgecv._quiet import progress
from edgecv.data.dataset import ImageListDataset
from edgecv.data.faces import identity_split
from edgecv.data.splits import Split
from edgecv.errors import EdgecvError
from edgecv.evaluate.embed import calibrate_threshold, pair_scores, tar_at_far
from edgecv.evaluate.embed_run import embed_files
from edgecv.models import create_backbone
from edgecv.models.embedder import Embedder
from edgecv.models.loading import embedder_meta, load_checkpoint
from edgecv.models.run_meta import read_run_meta
from edgecv.recipes import EmbedRecipe
from edgecv.train.cache import FeatureSet, finetune_sets, make_loader, split_features
from edgecv.train.checkpoint import save_atomic
from edgecv.train.distributed import DistInfo, barrier, ddp, mean_over_ranks, share, share_weight
from edgecv.train.loop import LoopState, Stage, cosine_schedule, epoch_seed, optimizer_step, transfer
from edgecv.train.stages import set_trainable, train_mode_with_frozen_bn

log = logging.getLogger("edgecv")
VAL_FAR = 1e-2  # best.pt is chosen by val TAR at this FAR (1e-3 needs more val pairs than most sets have)


class EmbedLoss(nn.Module):
    """ArcFace and/or batch-hard triplet loss on unnormalised embeddings (both normalise internally).

    Under DDP each rank holds its share of every P x K batch. ArcFace is a mean over images: each rank's share,
    weighted by ``share_weight``, gives the global batch's gradient exactly. The triplet miner must see the whole
    batch (an anchor's hardest positive or negative may sit on another rank): pytorch-metric-learning's distributed
    wrappers gather every rank's embeddings and mine and score over all of them (their loss comes times the world
    size, which DDP's average of the ranks' gradients undoes)."""

    def __init__(self, kind: str, num_classes: int, dim: int, margin: float, scale: float, triplet_margin: float, world: int = 1):
        super().__init__()
        require("pytorch_metric_learning", "train", "the face embedder's losses")
        from pytorch_metric_learning import distances, losses, miners
        from pytorch_metric_learning.utils.distributed import DistributedLossWrapper, DistributedMinerWrapper

        self.kind, self.world = kind, world
        self.arcface = losses.ArcFaceLoss(num_classes, dim, margin=margin, scale=scale) if "arcface" in kind else None
        self.triplet = self.miner = None
        if "triplet" in kind:
            self.triplet = losses.TripletMarginLoss(margin=triplet_margin, distance=distances.CosineSimilarity())
            self.miner = miners.BatchHardMiner(distance=distances.CosineSimilarity())
            if world > 1:
                self.triplet, self.miner = DistributedLossWrapper(self.triplet), DistributedMinerWrapper(self.miner)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor, weight: float = 1.0) -> tuple[torch.Tensor, float]:
        """(the loss to back-propagate, the batch's loss value for the epoch's mean)"""
        loss, value = emb.new_zeros(()), 0.0
        if self.arcface is not None:
            arc = self.arcface(emb, labels)
            loss, value = loss + arc * weight, float(arc.detach())
        if self.triplet is not None:
            tri = self.triplet(emb, labels, self.miner(emb, labels))
            loss, value = loss + tri, value + float(tri.detach()) / self.world
        return loss, value


def check_world(kind: str, batch_size: int, identities: int, info: DistInfo) -> None:
    """The triplet loss's gathering needs every rank to hold as many identities of each batch as the others."""
    per_batch = min(max(2, batch_size // 4), identities)  # pk_batches' P
    if "triplet" in kind and per_batch % info.world:
        raise EdgecvError(
            f"train.batch_size {batch_size} gives {per_batch} identities per batch, which do not split evenly over "
            f"{info.world} processes (the triplet loss mines over all of them); use a batch size of "
            f"{4 * info.world * max(1, per_batch // info.world)} or a number of processes that divides {per_batch}"
        )


class EmbedStep(nn.Module):
    """A batch's loss, from the body's cached outputs or (``through_body``) from images: one ``forward`` for ``ddp``."""

    def __init__(self, model: Embedder, loss_fn: EmbedLoss):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, x: torch.Tensor, labels: torch.Tensor, weight: float = 1.0, through_body: bool = False):
        return self.loss_fn(self.model.forward_head(self.model.body(x) if through_body else x), labels, weight)


def pk_batches(labels: np.ndarray, batch_size: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of P x K batches: each batch holds K images (drawn with replacement when fewer) of P identities,
    so every batch has positives for the triplet miner; every image is used about once per epoch."""
    by_id = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    p = max(2, batch_size // k)
    steps = max(1, len(labels) // (p * k))
    ids = np.asarray(list(by_id))
    out = []
    for _ in range(steps):
        chosen = rng.choice(ids, size=min(p, len(ids)), replace=False)
        out.append(np.concatenate([rng.choice(by_id[c], size=k, replace=len(by_id[c]) < k) for c in chosen]))
    return out


def rank_part(batch: np.ndarray, k: int, info: DistInfo) -> tuple[np.ndarray, int, float]:
    """This rank's identities of a P x K batch (whole blocks of K, so the triplet miner keeps its positives), how
    many images that is, and the weight of its loss (``share_weight``)."""
    blocks = batch.reshape(-1, k)
    count, weight = share_weight(len(blocks), info)
    return share(blocks, info).reshape(-1), count * k, weight


def _verification(emb: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    if len(labels) < 2:
        return {}
    gen, imp = pair_scores(F.normalize(emb, dim=-1).numpy(), labels.numpy())
    tar, _ = tar_at_far(gen, imp, VAL_FAR)
    gap = float(gen.mean() - imp.mean()) if len(gen) and len(imp) else 0.0
    return {"tar": tar, "loss": 1.0 - gap}  # loss: the tie-breaker, smaller when genuine and impostor pairs separate


def head_stage(
    model: Embedder, loss_fn: EmbedLoss, rec: EmbedRecipe, train: FeatureSet, val: FeatureSet, info: DistInfo
) -> Stage:
    """The head (and ArcFace's class centres) on cached body outputs; under DDP each rank takes its share of every
    batch's identities (rank 0 validates)."""
    tr = rec.train
    net = ddp(EmbedStep(model, loss_fn), info)
    params = list(model.head.parameters()) + list(loss_fn.parameters())
    opt = torch.optim.AdamW(params, lr=tr.head.lr, weight_decay=tr.head.weight_decay)
    labels = train.labels.numpy()
    steps = len(pk_batches(labels, tr.batch_size, 4, np.random.default_rng(0)))
    sched = cosine_schedule(opt, tr.head.epochs * steps, warmup=min(steps * 2, 50))

    def train_epoch(epoch: int) -> dict[str, float]:
        model.head.train()
        total, n = 0.0, 0
        for b in pk_batches(labels, tr.batch_size, 4, np.random.default_rng(epoch_seed(tr.seed, "head", epoch))):
            part, k, weight = rank_part(b, 4, info)
            idx = torch.from_numpy(part)
            loss, value = net(train.features[idx], train.labels[idx], weight)
            optimizer_step(opt, sched, loss)
            total, n = total + value * k, n + k
        return {"loss": mean_over_ranks(total, n, info)}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        if not info.main:
            return {}
        model.head.eval()
        return _verification(model.forward_head(val.features), val.labels)

    return Stage("head", tr.head.epochs, model, opt, sched, train_epoch, validate, metric="tar")


def finetune_stage(
    model: Embedder,
    loss_fn: EmbedLoss,
    rec: EmbedRecipe,
    train_ds: ImageListDataset,
    val_ds: ImageListDataset,
    remap: dict[int, int],
    info: DistInfo,
) -> Stage:
    tr, ft = rec.train, rec.train.finetune
    unfrozen = set_trainable(model, ft.unfreeze_blocks)
    opt = torch.optim.AdamW(
        [
            {"params": [p for m in unfrozen for p in m.parameters()], "lr": ft.lr},
            {"params": list(model.head.parameters()) + list(loss_fn.parameters()), "lr": ft.lr * 3},
        ],
        weight_decay=ft.weight_decay,
    )
    labels = np.asarray([remap[y] for y in train_ds.labels])
    steps = len(pk_batches(labels, tr.batch_size, 4, np.random.default_rng(0)))
    sched = cosine_schedule(opt, ft.epochs * steps)
    net = ddp(EmbedStep(model, loss_fn), info)

    def train_epoch(epoch: int) -> dict[str, float]:
        train_mode_with_frozen_bn(model, unfrozen)
        total, n = 0.0, 0
        for b in progress(
            pk_batches(labels, tr.batch_size, 4, np.random.default_rng(epoch_seed(tr.seed, "finetune", epoch))),
            desc=f"finetune {epoch + 1}/{ft.epochs}",
            disable=None if info.main else True,
            leave=False,
        ):
            part, k, weight = rank_part(b, 4, info)
            items = [train_ds[int(i)] for i in part]
            items = [it for it in items if it is not None]
            x = torch.stack([torch.as_tensor(it[0]) for it in items])
            y = torch.as_tensor([remap[int(it[1])] for it in items])
            loss, value = net(x, y, weight, True)
            optimizer_step(opt, sched, loss)
            total, n = total + value * k, n + k
        return {"loss": mean_over_ranks(total, n, info)}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        if not info.main:
            return {}
        model.eval()
        embs, ys = [], []
        for batch, _ in make_loader(val_ds, tr.batch_size, tr.workers, 0, DistInfo(0, 1, info.device)):
            if batch is not None:
                embs.append(model.forward_head(model.body(batch[0])))
                ys.append(batch[1])
        return _verification(torch.cat(embs), torch.cat(ys)) if embs else {}

    return Stage("finetune", ft.epochs, model, opt, sched, train_epoch, validate, metric="tar")


def train_embedder(rec: EmbedRecipe, run_dir: Path, info: DistInfo, last: dict[str, Any] | None, callbacks=()) -> dict[str, Any]:
    """Train (or, with ``last``, continue) the face embedder ``rec`` describes; returns the test metrics."""
    from edgecv.evaluate.embed_run import evaluate_embedder

    split = _identity_split(rec, run_dir, last is not None, info)
    state = LoopState.from_dict(last["loop"]) if last else LoopState()
    _announce(run_dir, split, f" (resuming {state.stage} after epoch {state.epoch})" if last else "")
    backbone = create_backbone(rec.model.backbone, rec.model.pretrained, rec.model.weights)
    log.info("backbone %s, ImageNet weights from %s", backbone.spec.name, backbone.weights_source)
    model = Embedder(backbone, rec.model.dim, rec.model.dropout, rec.model.head, rec.data.input_size)
    train_ids = sorted(set(split.labels["train"]))
    remap = {c: i for i, c in enumerate(train_ids)}
    tr = rec.train
    check_world(tr.loss, tr.batch_size, len(train_ids), info)
    loss_fn = EmbedLoss(
        tr.loss, len(train_ids), rec.model.dim, tr.arcface_margin, tr.arcface_scale, tr.triplet_margin, info.world
    )
    holder = nn.ModuleDict({"model": model, "loss": loss_fn})  # checkpoints carry the ArcFace class centres too
    if last is not None:
        holder.load_state_dict(last["model"])
    model.freeze_body()
    mean, std = list(backbone.spec.mean), list(backbone.spec.std)
    ck_meta = _checkpoint_meta(rec, backbone, [split.classes[c] for c in train_ids])
    kw = dict(
        info=info, run_dir=run_dir, seed=tr.seed, patience=tr.early_stopping, checkpoint_meta=lambda: ck_meta, callbacks=callbacks
    )

    def head() -> Stage:
        # the body's output: pooled features (head "pool") or the last feature map (head "gdc")
        train_f, val_f = split_features(model.backbone, rec, split, run_dir, info, net=model.body, tag=rec.model.head)
        train_f = FeatureSet(train_f.features, torch.as_tensor([remap[int(y)] for y in train_f.labels]), train_f.skipped)
        stage = head_stage(model, loss_fn, rec, train_f, val_f, info)
        stage.model = holder
        return stage

    def finetune() -> Stage:
        stage = finetune_stage(model, loss_fn, rec, *finetune_sets(rec, split, mean, std), remap, info)
        stage.model = holder
        return stage

    transfer(state, last, holder, head, finetune if tr.finetune.epochs > 0 else None, **kw)
    if not info.main:
        return {}
    _store_threshold(model, holder, ck_meta, split, run_dir, tr.target_far)
    metrics = evaluate_embedder(run_dir)
    metrics.update(best=state.best)
    return metrics


def _announce(run_dir: Path, split: Split, resuming: str) -> None:
    ids = {k: len(set(v)) for k, v in split.labels.items()}
    n = {k: len(split.files[k]) for k in ("train", "val", "test")}
    log.info(
        "run %s: face embedder, identities train/val/test = %d/%d/%d (disjoint), images %s%s",
        run_dir,
        ids["train"],
        ids["val"],
        ids["test"],
        f"{n['train']}/{n['val']}/{n['test']}",
        resuming,
    )


def _identity_split(rec: EmbedRecipe, run_dir: Path, resuming: bool, info: DistInfo) -> Split:
    """The run's split by identity: made (and saved, by rank 0) at the start, read back when resuming."""
    path, s = run_dir / "split.json", rec.data.split
    if info.main and not (resuming and path.is_file()):
        split = identity_split(rec.data.root, s.test, s.val, s.seed, rec.data.min_images, max(2, rec.train.workers))
        split.save(path)
        if split.skipped:
            first = split.skipped[0]
            log.warning(
                "left out %d files/identities (listed in %s), e.g. %s: %s",
                len(split.skipped),
                path,
                first["file"],
                first["reason"],
            )
    barrier(info)
    return Split.load(path)


def _checkpoint_meta(rec: EmbedRecipe, backbone, classes: list[str]) -> dict[str, Any]:
    return {
        "task": "embed",
        "classes": classes,
        "backbone": backbone.spec.name,
        "weights_source": backbone.weights_source,
        "input_size": rec.data.input_size,
        "mean": list(backbone.spec.mean),
        "std": list(backbone.spec.std),
        "dim": rec.model.dim,
        "dropout": rec.model.dropout,
        "head": rec.model.head,
        "loss": rec.train.loss,
        "recipe_name": rec.name,
        "edgecv_version": edgecv.__version__,
    }


def _store_threshold(model, holder, ck_meta: dict[str, Any], split: Split, run_dir: Path, target_far: float) -> None:
    """The match threshold: calibrated on val pairs through the device's preprocessing, stored in best.pt."""
    best = load_checkpoint(run_dir / "best.pt")
    holder.load_state_dict(best["model"])
    meta = embedder_meta(model, read_run_meta(ck_meta, run_dir / "best.pt"), calibrating_to=target_far)
    val_emb = embed_files(model, meta, split.root, split.files["val"])
    thr = calibrate_threshold(val_emb, np.asarray(split.labels["val"]), target_far)
    best["meta"] = {**best["meta"], "threshold": thr}
    save_atomic(best, run_dir / "best.pt")
    log.info(
        "match threshold %.4f (1:K, %d-shot templates) for FAR %.0e on %d val impostor scores (val TAR %.3f); "
        "1:1 verify threshold %.4f (val TAR %.3f)%s",
        thr["match"],
        thr["shots"],
        target_far,
        thr["scores"]["impostor"],
        thr["tar"],
        thr["verify"],
        thr["verify_tar"],
        ""
        if thr["far_resolved"]
        else f"; too few val scores to resolve FAR {target_far:g}: the threshold sits just above the best impostor",
    )
