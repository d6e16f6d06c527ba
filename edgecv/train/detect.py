"""``edgecv train`` for ``task: detect``: the same run directory, split, checkpoints, resume and epoch loop as the
classifier, with the detector's two transfer-learning stages:

1. backbone frozen: its stride-8/16/32 maps of every train image (plain + ``cache_augmentations`` box-aware
   augmented copies) are computed once, with their targets; the neck and head train on them for many cheap epochs;
2. fine-tune (optional): the last ``unfreeze_blocks`` backbone stages train too, on freshly augmented images.

Validation picks best.pt by val mAP@0.5 (pycocotools, on predictions decoded by the runtime's NMS).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

import edgecv
from edgecv._quiet import progress
from edgecv.data.detection import DetectionSet, DetSample, load_detection
from edgecv.data.imagefolder import read_rgb
from edgecv.data.splits import SPLITS, Split, stratified_split
from edgecv.evaluate.detect import Evaluator
from edgecv.models import create_backbone
from edgecv.models.detector import Detector
from edgecv.recipes import DetectAugmentSpec, DetectRecipe
from edgecv.runtime.preprocess import Transform, letterbox, normalize_chw
from edgecv.train.detect_loss import assign, detection_loss, level_ranges
from edgecv.train.distributed import DistInfo, Forward, barrier, ddp, gather_rows, mean_over_ranks, share, share_weight
from edgecv.train.loop import LoopState, Stage, cosine_schedule, optimizer_step, transfer

METRIC = "map50_95"  # what selects best.pt: COCO's primary metric (mAP50 saturates before the boxes fit)

log = logging.getLogger("edgecv")


def detect_split(ds: DetectionSet, test: float, val: float, seed: int) -> Split:
    """Random, seeded split stratified by each image's most frequent class (images without objects: class -1)."""
    key = np.asarray([np.bincount(s.classes).argmax() if len(s.classes) else -1 for s in ds.samples])
    idx = stratified_split(key, test, val, seed)
    files = [s.file for s in ds.samples]
    return Split(
        root=str(ds.root),
        classes=list(ds.classes),
        seed=seed,
        fractions={"test": test, "val": val},
        files={k: [files[i] for i in idx[k]] for k in SPLITS},
        labels={k: [int(key[i]) for i in idx[k]] for k in SPLITS},
        skipped=[{"file": f, "reason": "unreadable image"} for f in ds.report.unreadable],
    )


def letterboxed(root: Path, s: DetSample, size: int) -> tuple[np.ndarray, np.ndarray, Transform]:
    """The image as the device sees it (the runtime's letterbox) and its boxes in those pixels."""
    img, tf = letterbox(read_rgb(root / s.file), (size, size))
    return img, tf.to_input(s.boxes), tf


def box_augment(spec: DetectAugmentSpec) -> A.Compose:
    """Flip, scale + shift (grey fill like the letterbox) and colour, boxes moved with the pixels; boxes less than
    40% visible afterwards are dropped."""
    cj = spec.color_jitter
    return A.Compose(
        [
            A.HorizontalFlip(p=spec.hflip),
            A.Affine(
                scale=spec.scale,
                translate_percent=(-spec.translate, spec.translate),
                border_mode=cv2.BORDER_CONSTANT,
                fill=114,
                p=0.8,
            ),
            A.ColorJitter(brightness=cj, contrast=cj, saturation=cj, hue=min(cj / 4, 0.5), p=0.8 if cj else 0.0),
        ],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["classes"], min_visibility=0.4, clip=True),
    )


class DetDataset(Dataset):
    def __init__(self, ds: DetectionSet, files: list[str], size: int, mean, std, augment: A.Compose | None = None, seed: int = 0):
        index = ds.by_file()
        self.root, self.samples, self.size = ds.root, [index[f] for f in files], size
        self.mean, self.std, self.augment, self.seed = tuple(mean), tuple(std), augment, seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        img, boxes, _ = letterboxed(self.root, self.samples[i], self.size)
        classes = self.samples[i].classes
        if self.augment is not None:
            self.augment.set_random_seed((self.seed * 100_003 + i) % 2**32)
            out = self.augment(image=img, bboxes=boxes, classes=classes)
            img = out["image"]
            boxes = np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
            classes = np.asarray(out["classes"], np.int64)
        x = normalize_chw(img, self.mean, self.std)
        return torch.from_numpy(x), torch.from_numpy(boxes), torch.from_numpy(np.asarray(classes, np.int64))


def _collate(batch):
    xs, boxes, classes = zip(*batch)
    return torch.stack(xs), list(boxes), list(classes)


class Targets:
    """Assignment for a batch: labels (B, A) and matched boxes (B, A, 4)."""

    def __init__(self, model: Detector, radius: float):
        self.model, self.radius = model, radius
        self.lo, self.hi = level_ranges(model.strides, model.point_strides)

    def __call__(self, boxes: list[torch.Tensor], classes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        out = [
            assign(self.model.points, self.model.point_strides, self.lo, self.hi, b, c, self.radius)
            for b, c in zip(boxes, classes)
        ]
        return torch.stack([o[0] for o in out]), torch.stack([o[1] for o in out])


@torch.no_grad()
def cache_features(model: Detector, loader: DataLoader, targets: Targets, desc: str, info: DistInfo) -> dict[str, Any]:
    """The frozen body's maps and the targets of every image of ``loader``'s dataset, in dataset order. Under DDP
    each rank computes every world-th image and all ranks get all of them."""
    model.body.eval()
    feats: list[list[torch.Tensor]] = []
    labels, matched = [], []
    shard = Subset(loader.dataset, range(info.rank, len(loader.dataset), info.world))
    mine = DataLoader(shard, loader.batch_size, num_workers=loader.num_workers, collate_fn=_collate)
    for x, boxes, classes in progress(mine, desc=desc, disable=None if info.main else True, leave=False):
        feats.append([f.half() for f in model.features(x)])
        lab, mat = targets(boxes, classes)
        labels.append(lab.to(torch.int16))
        matched.append(mat)
    index = torch.as_tensor(shard.indices)
    return {
        "feats": [gather_rows(info, torch.cat([f[k] for f in feats]), index)[0] for k in range(len(model.strides))],
        "labels": gather_rows(info, torch.cat(labels), index)[0],
        "matched": gather_rows(info, torch.cat(matched), index)[0],
    }


def _batches(n: int, size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for i in range(0, n, size):
        yield torch.from_numpy(order[i : i + size])


def head_stage(model: Detector, rec: DetectRecipe, train: dict, val: dict | None, evaluate: Evaluator, info: DistInfo) -> Stage:
    """Neck + head on cached backbone maps; under DDP each rank takes its share of every batch (rank 0 validates)."""
    params = [p for n, p in model.named_parameters() if not n.startswith("body.")]
    hs = rec.train.head
    opt = torch.optim.AdamW(params, lr=hs.lr, weight_decay=hs.weight_decay)
    n, bs = len(train["labels"]), rec.train.batch_size
    sched = cosine_schedule(opt, hs.epochs * -(-n // bs), warmup=min(100, n // bs))
    net = ddp(Forward(model, "head_outputs"), info)

    def run(data: dict, idx: torch.Tensor, forward=model.head_outputs):
        logits, boxes = forward([f[idx].float() for f in data["feats"]])
        return (
            logits,
            boxes,
            detection_loss(logits, boxes, data["labels"][idx].long(), data["matched"][idx], rec.train.box_weight),
        )

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        model.body.eval()
        total, count = 0.0, 0
        for idx in _batches(n, bs, np.random.default_rng(rec.train.seed * 7919 + epoch)):
            k, weight = share_weight(len(idx), info)
            loss = run(train, share(idx, info), net)[2]["loss"]
            optimizer_step(opt, sched, loss * weight)
            total, count = total + float(loss.detach()) * k, count + k
        return {"loss": mean_over_ranks(total, count, info)}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        if val is None or not len(val["labels"]):
            return {}
        model.eval()
        outs, losses = [], []
        for idx in _batches(len(val["labels"]), 64, None):
            logits, boxes, loss = run(val, idx)
            outs.append((boxes, torch.sigmoid(logits)))
            losses.append(float(loss["loss"]) * len(idx))
        m, _ = evaluate(torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs]))
        return {"map50": m["map50"], "map50_95": m["map50_95"], "loss": sum(losses) / len(val["labels"])}

    return Stage("head", hs.epochs, model, opt, sched, train_epoch, validate, metric=METRIC)


def finetune_stage(
    model: Detector,
    rec: DetectRecipe,
    train_ds: DetDataset,
    val_loader: DataLoader | None,
    targets: Targets,
    evaluate: Evaluator,
    info: DistInfo,
) -> Stage:
    ft = rec.train.finetune
    units = [m for unit in model.units() for m in unit]  # one module a unit
    thawed = units[-ft.unfreeze_blocks :]
    for m in thawed:
        for p in m.parameters():
            p.requires_grad_(True)
    head = model.head_parameters()
    opt = torch.optim.AdamW(
        [{"params": [p for m in thawed for p in m.parameters()], "lr": ft.lr}, {"params": head, "lr": ft.lr * 3}],
        weight_decay=ft.weight_decay,
    )
    bs = rec.train.batch_size
    sched = cosine_schedule(opt, ft.epochs * -(-len(train_ds) // bs))
    net = ddp(Forward(model, "forward_train"), info)

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        for i, m in enumerate(units):  # frozen stages keep their ImageNet BatchNorm statistics
            m.train(i >= len(units) - ft.unfreeze_blocks)
        train_ds.seed = rec.train.seed * 7919 + epoch
        total, count = 0.0, 0
        for batch, (x, boxes, classes) in _rank_batches(train_ds, bs, rec.train.workers, info, f"finetune {epoch + 1}"):
            k, weight = share_weight(len(batch), info)
            labels, matched = targets(boxes, classes)
            logits, pred = net(x)
            loss = detection_loss(logits, pred, labels, matched, rec.train.box_weight)["loss"]
            optimizer_step(opt, sched, loss * weight)
            total, count = total + float(loss.detach()) * k, count + k
        return {"loss": mean_over_ranks(total, count, info)}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        if val_loader is None:
            return {}
        model.eval()
        outs, loss_sum, n = [], 0.0, 0
        for x, boxes, classes in val_loader:
            labels, matched = targets(boxes, classes)
            logits, pred = model.forward_train(x)
            loss_sum += float(detection_loss(logits, pred, labels, matched, rec.train.box_weight)["loss"]) * len(x)
            outs.append((pred, torch.sigmoid(logits)))
            n += len(x)
        if not n:
            return {}
        m, _ = evaluate(torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs]))
        return {"map50": m["map50"], "map50_95": m["map50_95"], "loss": loss_sum / n}

    return Stage("finetune", ft.epochs, model, opt, sched, train_epoch, validate, metric=METRIC)


def _rank_batches(train_ds: DetDataset, bs: int, workers: int, info: DistInfo, desc: str):
    """(global batch, this rank's share of it as tensors) for one epoch. The global batches are the index batches a
    shuffled DataLoader draws from the dataset's seed, the same at any world size."""
    order = DataLoader(range(len(train_ds)), bs, shuffle=True, generator=torch.Generator().manual_seed(train_ds.seed))
    batches = [b.tolist() for b in order]
    loader = DataLoader(train_ds, batch_sampler=[share(b, info) for b in batches], num_workers=workers, collate_fn=_collate)
    return progress(zip(batches, loader), total=len(batches), desc=desc, disable=None if info.main else True, leave=False)


def _open_data(rec: DetectRecipe, run_dir: Path, resuming: bool, info: DistInfo) -> tuple[DetectionSet, Split]:
    """The box set and the run's split of it: made (and saved, by rank 0) at the start, read back when resuming."""
    ds = load_detection(rec.data.root, rec.data.annotations)
    path = run_dir / "split.json"
    if info.main and not (resuming and path.is_file()):
        s = rec.data.split
        detect_split(ds, s.test, s.val, s.seed).save(path)
    barrier(info)
    return ds, Split.load(path)


def _checkpoint_meta(rec: DetectRecipe, backbone, ds: DetectionSet) -> dict[str, Any]:
    return {
        "task": "detect",
        "classes": list(ds.classes),
        "backbone": backbone.spec.name,
        "weights_source": backbone.weights_source,
        "input_size": rec.data.input_size,
        "mean": list(backbone.spec.mean),
        "std": list(backbone.spec.std),
        "strides": list(rec.model.strides),
        "channels": rec.model.channels,
        "head_convs": rec.model.head_convs,
        "recipe_name": rec.name,
        "edgecv_version": edgecv.__version__,
        "labels_report": ds.report.to_dict(),
    }


def _cached_train_maps(
    model: Detector, rec: DetectRecipe, split: Split, loader, targets: Targets, info: DistInfo
) -> dict[str, Any]:
    """The frozen body's maps of the train images, plain and ``cache_augmentations`` augmented copies, concatenated."""
    tr, files = rec.train, split.files["train"]
    copies = [cache_features(model, loader(files), targets, "caching train maps #0", info)]
    for c in range(1, tr.head.cache_augmentations + 1):
        augmented = loader(files, box_augment(rec.augment), tr.seed + c)
        copies.append(cache_features(model, augmented, targets, f"caching train maps #{c}", info))
    return {
        "feats": [torch.cat([c["feats"][k] for c in copies]) for k in range(len(model.strides))],
        "labels": torch.cat([c["labels"] for c in copies]),
        "matched": torch.cat([c["matched"] for c in copies]),
    }


def train_detector(rec: DetectRecipe, run_dir: Path, info: DistInfo, last: dict[str, Any] | None, callbacks=()) -> dict[str, Any]:
    """Train (or, with ``last``, the last.pt being resumed, continue) the detector ``rec`` describes."""
    from edgecv.evaluate.detect_run import evaluate_detector

    ds, split = _open_data(rec, run_dir, last is not None, info)
    state = LoopState.from_dict(last["loop"]) if last else LoopState()
    n = split.counts()
    sizes = f"{len(ds.classes)} classes, train/val/test = {n['train']}/{n['val']}/{n['test']} images"
    resuming = f" (resuming {state.stage} after epoch {state.epoch})" if last else ""
    log.info("run %s: detector, %s, %d boxes%s", run_dir, sizes, sum(len(s.classes) for s in ds.samples), resuming)
    backbone = create_backbone(rec.model.backbone, rec.model.pretrained, rec.model.weights)
    log.info("backbone %s, ImageNet weights from %s", backbone.spec.name, backbone.weights_source)
    size, mean, std = rec.data.input_size, backbone.spec.mean, backbone.spec.std
    model = Detector(backbone, len(ds.classes), size, rec.model.strides, rec.model.channels, rec.model.head_convs)
    if last is not None:
        model.load_state_dict(last["model"])
    model.freeze_body()
    ck_meta = _checkpoint_meta(rec, backbone, ds)
    evaluate = Evaluator(ds, split.files["val"], size)
    targets = Targets(model, rec.train.center_radius)
    tr = rec.train
    kw = dict(
        info=info, run_dir=run_dir, seed=tr.seed, patience=tr.early_stopping, checkpoint_meta=lambda: ck_meta, callbacks=callbacks
    )

    def loader(files, augment=None, seed=0):
        return DataLoader(
            DetDataset(ds, files, size, mean, std, augment, seed), tr.batch_size, num_workers=tr.workers, collate_fn=_collate
        )

    def head() -> Stage:
        train = _cached_train_maps(model, rec, split, loader, targets, info)
        one = DistInfo(0, 1, info.device)  # rank 0 validates
        val = cache_features(model, loader(split.files["val"]), targets, "caching val maps", one) if info.main else None
        return head_stage(model, rec, train, val, evaluate, info)

    def finetune() -> Stage:
        train_ds = DetDataset(ds, split.files["train"], size, mean, std, box_augment(rec.augment))
        val_loader = loader(split.files["val"]) if info.main else None
        return finetune_stage(model, rec, train_ds, val_loader, targets, evaluate, info)

    transfer(state, last, model, head, finetune if tr.finetune.epochs > 0 else None, **kw)
    if not info.main:
        return {}
    metrics = evaluate_detector(run_dir, ds=ds)
    metrics.update(best=state.best)
    return metrics
