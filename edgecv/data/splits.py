"""The random, stratified, seeded train/val/test split, verified and recorded in ``split.json``.

Every image is decoded once here; unreadable ones are skipped, counted and listed with the reason, so
training, evaluation and export calibration all see the same clean file lists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgecv._quiet import progress
from edgecv.data.imagefolder import ImageFolder, UnreadableImage, read_rgb, scan_imagefolder
from edgecv.errors import EdgecvError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    root: str
    classes: list[str]
    seed: int
    fractions: dict[str, float]
    files: dict[str, list[str]]
    labels: dict[str, list[int]]
    skipped: list[dict[str, str]] = field(default_factory=list)
    root_rel: str | None = None  # ``root`` relative to the run directory: a run moved with its data still finds it

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.files.items()}

    def file_hash(self, split: str) -> str:
        """Hash of a split's file list (recorded with calibration data and artifacts)."""
        return hashlib.sha256("\n".join(self.files[split]).encode()).hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        """Write the split with its dataset root absolute and relative to the run directory (``path``'s folder)."""
        path = Path(path)
        root = Path(self.root).resolve()
        rec = dataclasses.replace(self, root=str(root), root_rel=os.path.relpath(root, path.resolve().parent))
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(rec), indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, data: str | Path | None = None) -> "Split":
        """The recorded split, its ``root`` the folder its files are in now: ``data`` when given, else the recorded
        root, else the same place relative to the run (a run moved with its data). One error line if none holds
        the files: a metric over no images would read as a result."""
        path = Path(path)
        if not path.is_file():
            raise EdgecvError(f"{path}: split file not found (is this a run directory?)")
        split = cls(**json.loads(path.read_text()))
        if data is not None:
            if not split.holds(Path(data)):
                raise EdgecvError(f"--data {data}: {split.missing(Path(data))}")
            return dataclasses.replace(split, root=str(Path(data)))
        tried = [Path(split.root)] + ([path.parent / split.root_rel] if split.root_rel else [])
        for root in tried:
            if split.holds(root):
                return dataclasses.replace(split, root=str(root))
        raise EdgecvError(
            f"{path.parent}: the run's dataset is not at {' nor '.join(map(str, dict.fromkeys(tried)))} "
            f"({split.missing(tried[0])}); pass --data DIR, the folder its split.json files are in"
        )

    def _sample(self, n: int = 8) -> list[str]:
        return [f for files in self.files.values() for f in files][:n]

    def holds(self, root: Path) -> bool:
        """Whether ``root`` is a folder with the split's first files in it."""
        return root.is_dir() and all((root / f).is_file() for f in self._sample())

    def missing(self, root: Path) -> str:
        if not root.is_dir():
            return "no such folder"
        lost = next(f for f in self._sample() if not (root / f).is_file())
        return f"it has no {lost}"


def find_unreadable(root: Path, files: tuple[str, ...] | list[str], workers: int = 4) -> dict[str, str]:
    """Decode every file (OpenCV releases the GIL, so threads overlap); return {file: reason} for failures."""

    def check(rel: str) -> tuple[str, str | None]:
        try:
            read_rgb(root / rel)
            return rel, None
        except UnreadableImage as exc:
            return rel, str(exc)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = progress(pool.map(check, files), total=len(files), desc="checking images", disable=None, leave=False)
        return {rel: why for rel, why in results if why is not None}


def stratified_split(labels: np.ndarray, test: float, val: float, seed: int) -> dict[str, np.ndarray]:
    """Indices per split; each class is shuffled with ``seed`` and cut by the fractions (at least one
    test image per class that has three or more)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        n_test = int(round(n * test))
        n_val = int(round(n * val))
        if n >= 3:
            n_test = max(n_test, 1)
            n_val = max(n_val, 1) if val > 0 else 0
        n_test = min(n_test, n - 1)
        n_val = min(n_val, n - 1 - n_test)
        out["test"] += idx[:n_test].tolist()
        out["val"] += idx[n_test : n_test + n_val].tolist()
        out["train"] += idx[n_test + n_val :].tolist()
    return {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in out.items()}


def _readable(folder: ImageFolder, workers: int) -> tuple[list[int], list[dict[str, str]]]:
    """Indices of the decodable files, and the skipped ones with their reasons."""
    bad = find_unreadable(folder.root, folder.files, workers)
    keep = [i for i, f in enumerate(folder.files) if f not in bad]
    return keep, [{"file": f, "reason": r} for f, r in sorted(bad.items())]


def make_split(root: str | Path, test: float, val: float, seed: int, workers: int = 4) -> Split:
    folder: ImageFolder = scan_imagefolder(root)
    keep, skipped = _readable(folder, workers)
    files = np.asarray(folder.files, dtype=object)[keep]
    labels = np.asarray(folder.labels, dtype=np.int64)[keep]
    idx = stratified_split(labels, test, val, seed)
    missing = [folder.classes[c] for c in range(len(folder.classes)) if not np.any(labels[idx["train"]] == c)]
    if missing:
        raise EdgecvError(f"{root}: classes {missing} have no readable training images")
    return Split(
        root=str(folder.root),
        classes=list(folder.classes),
        seed=seed,
        fractions={"test": test, "val": val},
        files={s: files[idx[s]].tolist() for s in SPLITS},
        labels={s: labels[idx[s]].tolist() for s in SPLITS},
        skipped=skipped,
    )


def folder_as_split(root: str | Path, classes: list[str], name: str, workers: int = 4) -> Split:
    """An extra named test set: every readable image of ``root`` in the single split ``name``."""
    folder = scan_imagefolder(root, tuple(classes))
    keep, skipped = _readable(folder, workers)
    return Split(
        root=str(folder.root),
        classes=list(classes),
        seed=0,
        fractions={},
        files={name: [folder.files[i] for i in keep]},
        labels={name: [folder.labels[i] for i in keep]},
        skipped=skipped,
    )
