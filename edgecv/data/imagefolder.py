"""ImageFolder layout (one subfolder per class) and image reading that converts instead of crashing.

``read_rgb`` is numpy + OpenCV only: the device reads images the same way the trainer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgecv.errors import EdgecvError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})


class UnreadableImage(ValueError):
    """The file exists but is not a decodable image (truncated, corrupt, wrong format)."""


def to_rgb8(img: np.ndarray, order: str = "BGR") -> np.ndarray:
    """Any decoded image (gray, gray+alpha, BGR(A), 8/16-bit, float) -> HxWx3 uint8 RGB."""
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        f = img.astype(np.float32)
        hi = float(f.max()) if f.size else 1.0
        img = np.clip(f * (255.0 if hi <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:  # gray + alpha
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if order == "BGR" else cv2.COLOR_RGBA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if order == "BGR" else np.ascontiguousarray(img)


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` to HxWx3 uint8 RGB; raise UnreadableImage with the reason when it cannot."""
    try:
        buf = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise UnreadableImage(f"cannot read file: {exc.strerror or exc}") from None
    if buf.size == 0:
        raise UnreadableImage("empty file")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise UnreadableImage("not a decodable image (corrupt or unsupported format)")
    return to_rgb8(img, "BGR")


@dataclass(frozen=True)
class ImageFolder:
    """Files (relative to ``root``) with integer labels indexing ``classes``."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[str, ...]
    labels: tuple[int, ...]


def scan_imagefolder(root: str | Path, classes: tuple[str, ...] | None = None) -> ImageFolder:
    """List images under ``root/<class>/``. ``classes`` pins the label order (extra test sets must
    use the training classes; a folder of an unknown class is an error, a missing class is fine)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgecvError(f"{root}: dataset folder not found")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = tuple(found)
        if len(classes) < 2:
            raise EdgecvError(f"{root}: an ImageFolder needs at least 2 class subfolders, found {len(classes)}")
    else:
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise EdgecvError(f"{root}: class folders {unknown} are not among the trained classes {list(classes)}")
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                files.append(p.relative_to(root).as_posix())
                labels.append(label)
    if not files:
        raise EdgecvError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return ImageFolder(root=root, classes=tuple(classes), files=tuple(files), labels=tuple(labels))
