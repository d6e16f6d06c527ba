"""torch Dataset over a recorded split. Unreadable files (changed since the split was made) are
skipped and counted by the collate function, never a crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from edgecv.data.imagefolder import UnreadableImage, read_rgb


class ImageListDataset(Dataset):
    def __init__(self, root: str | Path, files: list[str], labels: list[int], transform: Callable[[np.ndarray], np.ndarray]):
        self.root = Path(root)
        self.files = list(files)
        self.labels = list(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        try:
            rgb = read_rgb(self.root / self.files[i])
        except UnreadableImage:
            return None
        return torch.from_numpy(self.transform(rgb)), self.labels[i], i


def collate_skip_unreadable(batch):
    """default_collate over the readable items; the count of skipped ones rides along."""
    good = [b for b in batch if b is not None]
    skipped = len(batch) - len(good)
    if not good:
        return None, skipped
    return default_collate(good), skipped
