"""Stage 1 of transfer learning runs the frozen backbone once and keeps the features.

The head then trains on cached features: an epoch costs a few matrix multiplies instead of a pass
through the network. ``copies`` augmented views of each training image are cached so the head still
sees augmentation. Caches live in the run directory, keyed by everything that changes them, so
``--resume`` reuses them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, get_worker_info

from edgecv._quiet import progress
from edgecv.data.augment import TrainTransform, eval_transform
from edgecv.data.dataset import ImageListDataset, collate_skip_unreadable
from edgecv.train.checkpoint import save_atomic
from edgecv.train.distributed import DistInfo, barrier, gather_rows


@dataclass(frozen=True)
class FeatureSet:
    features: torch.Tensor  # [M, C] pooled, or [M, C, h, w] feature maps (an embedder's GDC head); float32
    labels: torch.Tensor  # [M] int64
    skipped: int = 0


def _reseed_worker(_: int) -> None:
    info = get_worker_info()
    ds = info.dataset.dataset if isinstance(info.dataset, Subset) else info.dataset
    if hasattr(ds.transform, "reseed"):
        ds.transform.reseed(info.seed)


def make_loader(
    dataset: ImageListDataset, batch_size: int, workers: int, seed: int, info: DistInfo, shuffle: bool = False
) -> DataLoader:
    """A loader over this rank's shard (every world-th item); reproducible for a given seed."""
    n = len(dataset)
    if shuffle:  # training: pad to a multiple of the world size so every DDP rank takes the same steps
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        order += order[: (-n) % info.world]
    else:
        order = list(range(n))
    shard = Subset(dataset, order[info.rank :: info.world])
    if workers == 0 and hasattr(dataset.transform, "reseed"):
        dataset.transform.reseed(seed)
    return DataLoader(
        shard,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_skip_unreadable,
        worker_init_fn=_reseed_worker if workers else None,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
    )


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    dataset: ImageListDataset,
    batch_size: int,
    workers: int,
    info: DistInfo,
    seed: int = 0,
    desc: str = "features",
) -> FeatureSet:
    """Pooled features of every dataset item in dataset order, gathered across ranks."""
    was = backbone.training
    backbone.eval()
    feats, index, skipped = [], [], 0
    loader = make_loader(dataset, batch_size, workers, seed, info)
    for batch, n_bad in progress(loader, desc=desc, disable=None if info.main else True, leave=False):
        skipped += n_bad
        if batch is None:
            continue
        x, _, idx = batch
        feats.append(backbone(x.to(info.device)).float().cpu())
        index.append(idx)
    backbone.train(was)
    if not feats:
        feats, index = [torch.zeros(0, 1)], [torch.zeros(0, dtype=torch.long)]
    rows, idx = gather_rows(info, torch.cat(feats), torch.cat(index))
    labels = torch.as_tensor(dataset.labels, dtype=torch.long)[idx]
    return FeatureSet(rows, labels, skipped)


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(path: Path, info: DistInfo, compute: Callable[[], FeatureSet]) -> FeatureSet:
    """Load ``path`` if present; otherwise compute (all ranks take part), rank 0 saves it. Feature maps are
    stored as float16 (half the disk; 41 kB per image view for EfficientNet-Lite0 at 112 px) and a fresh run
    trains on the same rounded values as a resumed one."""
    if path.is_file():
        data = torch.load(path, map_location="cpu", weights_only=True)
        return FeatureSet(data["features"].float(), data["labels"], int(data["skipped"]))
    fs = compute()
    stored = fs.features.half() if fs.features.dim() > 2 else fs.features
    fs = FeatureSet(stored.float(), fs.labels, fs.skipped)
    if info.main:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_atomic({"features": stored, "labels": fs.labels, "skipped": fs.skipped}, path)
    barrier(info)
    return fs


def concat(sets: list[FeatureSet]) -> FeatureSet:
    return FeatureSet(
        torch.cat([s.features for s in sets]), torch.cat([s.labels for s in sets]), int(np.sum([s.skipped for s in sets]))
    )


def split_features(
    bb, recipe, split, out: Path, info: DistInfo, net: nn.Module | None = None, tag: str = ""
) -> tuple[FeatureSet, FeatureSet]:
    """Frozen-backbone features of the train split (plain + ``cache_augmentations`` augmented copies) and of the val
    split, cached in ``out/cache`` under a key of everything they depend on. ``net`` (default the backbone ``bb``:
    pooled features) computes them, e.g. an embedder's feature-map body; ``tag`` names what it computes."""
    net = bb if net is None else net
    size = recipe.data.input_size
    mean, std = bb.spec.mean, bb.spec.std
    root, tr = Path(split.root), recipe.train
    key = dict(backbone=bb.spec.name, weights=bb.weights_source, size=size, root=split.root, **({"net": tag} if tag else {}))

    def ds(name: str, transform) -> ImageListDataset:
        return ImageListDataset(root, split.files[name], split.labels[name], transform)

    def one(name: str, transform, copy: int) -> FeatureSet:
        k = cache_key(
            **key, files=split.file_hash(name), aug=recipe.augment.model_dump() if copy else None, copy=copy, seed=tr.seed
        )
        return cached(
            out / "cache" / f"{name}-{copy}-{k}.pt",
            info,
            lambda: extract_features(
                net,
                ds(name, transform),
                tr.batch_size,
                tr.workers,
                info,
                seed=tr.seed * 1000 + copy,
                desc=f"caching {name} features #{copy}",
            ),
        )

    clean = eval_transform(size, mean, std)
    aug = TrainTransform(recipe.augment, size, mean, std)
    train = concat([one("train", clean, 0)] + [one("train", aug, c) for c in range(1, tr.head.cache_augmentations + 1)])
    return train, one("val", clean, 0)


def finetune_sets(rec, split, mean, std) -> tuple[ImageListDataset, ImageListDataset]:
    """The train images (augmented as ``rec.augment`` says) and the val images (plain), as a recipe's fine-tune
    stage reads them: whole images through the unfrozen body."""
    root, size = Path(split.root), rec.data.input_size
    train_ds = ImageListDataset(root, split.files["train"], split.labels["train"], TrainTransform(rec.augment, size, mean, std))
    val_ds = ImageListDataset(root, split.files["val"], split.labels["val"], eval_transform(size, mean, std))
    return train_ds, val_ds
