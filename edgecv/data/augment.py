"""Augmentation from the recipe (albumentations, OpenCV-backed), eval transform and test-time views.

Normalisation is ``edgecv.runtime.preprocess``: the same code the device runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from edgecv._deps import require
from edgecv.recipes import AugmentSpec
from edgecv.runtime.preprocess import classify_input_chw, normalize_chw, resize_rgb

Transform = Callable[[np.ndarray], np.ndarray]


def build_augment(spec: AugmentSpec, size: int):
    """The albumentations pipeline for training images (uint8 RGB in, uint8 RGB size x size out)."""
    A = require("albumentations", "train", "training augmentation")
    ops = []
    if spec.random_resized_crop is not None:
        crop = spec.random_resized_crop
        ops.append(A.RandomResizedCrop(size=(size, size), scale=tuple(crop.scale), ratio=tuple(crop.ratio)))
    else:
        ops.append(A.Resize(size, size))
    if spec.hflip > 0:
        ops.append(A.HorizontalFlip(p=spec.hflip))
    if spec.vflip > 0:
        ops.append(A.VerticalFlip(p=spec.vflip))
    if spec.rotation > 0 or spec.shear > 0:
        ops.append(A.Affine(rotate=(-spec.rotation, spec.rotation), shear=(-spec.shear, spec.shear), border_mode=1, p=0.5))
    if spec.color_jitter > 0:
        j = spec.color_jitter
        ops.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=0.0, p=0.8))
    if spec.pca_lighting > 0:
        ops.append(A.FancyPCA(alpha=spec.pca_lighting, p=0.5))
    return A.Compose(ops)


class TrainTransform:
    """Augment, then normalise exactly as the device does. ``reseed`` makes an epoch's draws
    reproducible (DataLoader workers call it with their own seed)."""

    def __init__(self, spec: AugmentSpec, size: int, mean: Sequence[float], std: Sequence[float]):
        self.aug = build_augment(spec, size)
        self.mean, self.std = tuple(mean), tuple(std)

    def reseed(self, seed: int) -> None:
        self.aug.set_random_seed(seed % 2**32)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return normalize_chw(self.aug(image=rgb)["image"], self.mean, self.std)


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> Transform:
    def apply(rgb: np.ndarray) -> np.ndarray:
        return classify_input_chw(rgb, size, mean, std)

    return apply


def tta_views(rgb: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Test-time views: the eval view and its mirror, plus four corner crops and a centre crop taken
    from the image resized 1/0.875 larger. Returns float32 V x 3 x S x S."""
    base = resize_rgb(rgb, size)
    big_size = int(round(size / 0.875))
    big = resize_rgb(rgb, big_size)
    o = big_size - size
    c = o // 2
    crops = [big[:size, :size], big[:size, o:], big[o:, :size], big[o:, o:], big[c : c + size, c : c + size]]
    views = [base, base[:, ::-1]] + crops
    return np.stack([normalize_chw(v, mean, std) for v in views])
