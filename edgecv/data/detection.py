"""Box-annotated datasets: COCO JSON and YOLO txt layouts read into one typed form.

Bad labels never crash a run: a box outside the image, of zero area or with an unknown class id, and an image
that cannot be read, are dropped, counted by reason in a ``LabelReport`` and listed (first few) in the log.
A box that sticks out of the image by a little is clipped (and counted as such); one that is mostly outside is
dropped.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgecv.data.imagefolder import IMAGE_SUFFIXES
from edgecv.errors import EdgecvError

log = logging.getLogger(__name__)

KEEP_INSIDE = 0.5  # a box with less than this fraction of its area inside the image is dropped, not clipped


@dataclass(frozen=True)
class DetSample:
    file: str  # relative to the dataset's image root
    width: int
    height: int
    boxes: np.ndarray  # (n, 4) float32 xyxy, pixels
    classes: np.ndarray  # (n,) int64

    def __post_init__(self) -> None:
        if self.boxes.shape != (len(self.classes), 4):
            raise EdgecvError(f"{self.file}: boxes {self.boxes.shape} do not match {len(self.classes)} class ids")


@dataclass
class LabelReport:
    dropped: Counter = field(default_factory=Counter)  # reason -> boxes (or images) dropped
    clipped: int = 0
    examples: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # image files that could not be decoded

    def drop(self, reason: str, where: str) -> None:
        self.dropped[reason] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{where}: {reason}")

    def to_dict(self) -> dict:
        return {"dropped": dict(self.dropped), "clipped": self.clipped, "examples": self.examples, "unreadable": self.unreadable}

    def log(self, source: str) -> None:
        if self.dropped or self.clipped:
            what = ", ".join(f"{n} {r}" for r, n in sorted(self.dropped.items()))
            log.warning(
                "%s: dropped %s; clipped %d boxes to the image (e.g. %s)",
                source,
                what or "nothing",
                self.clipped,
                "; ".join(self.examples[:3]),
            )


@dataclass(frozen=True)
class DetectionSet:
    root: Path  # image root
    classes: list[str]
    samples: list[DetSample]
    report: LabelReport
    source: str  # the annotation file or folder

    def by_file(self) -> dict[str, DetSample]:
        return {s.file: s for s in self.samples}


def _clean(
    boxes: np.ndarray, classes: np.ndarray, w: int, h: int, n_classes: int, report: LabelReport, where: str
) -> tuple[np.ndarray, np.ndarray]:
    keep_b, keep_c = [], []
    for (x1, y1, x2, y2), c in zip(boxes.tolist(), classes.tolist()):
        if not all(np.isfinite([x1, y1, x2, y2])):
            report.drop("non-finite box", where)
            continue
        if int(c) != c or not 0 <= c < n_classes:
            report.drop("unknown class id", where)
            continue
        area = (x2 - x1) * (y2 - y1)
        if x2 <= x1 or y2 <= y1 or area <= 0:
            report.drop("zero-area box", where)
            continue
        cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))
        inside = max(cx2 - cx1, 0.0) * max(cy2 - cy1, 0.0)
        if inside < KEEP_INSIDE * area:
            report.drop("box outside the image", where)
            continue
        if max(abs(cx1 - x1), abs(cy1 - y1), abs(cx2 - x2), abs(cy2 - y2)) > 0.5:  # not just rounding
            report.clipped += 1
            if len(report.examples) < 20:
                report.examples.append(f"{where}: box clipped to the image")
        keep_b.append((cx1, cy1, cx2, cy2))
        keep_c.append(int(c))
    return np.asarray(keep_b, np.float32).reshape(-1, 4), np.asarray(keep_c, np.int64)


def _image_size(path: Path) -> tuple[int, int] | None:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    return None if img is None or img.size == 0 else (img.shape[1], img.shape[0])


def load_coco(annotations: str | Path, image_root: str | Path | None = None, only: Collection[str] | None = None) -> DetectionSet:
    """COCO detection JSON (``images``, ``annotations`` with ``bbox`` = [x, y, w, h], ``categories``). Category
    ids may be any integers; they map to contiguous class indices in the order of ``categories``. Crowd
    annotations are skipped (COCO does not score them). ``only``: read just these image files (evaluating one
    split need not decode the whole set)."""
    annotations = Path(annotations)
    try:
        data = json.loads(annotations.read_text())
        cats = sorted(data["categories"], key=lambda c: c["id"])
        images, anns = data["images"], data.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgecvError(f"{annotations}: not a COCO detection file ({exc})") from None
    root = Path(image_root) if image_root else annotations.parent
    classes = [str(c["name"]) for c in cats]
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    per_image: dict[int, list[dict]] = {}
    for a in anns:
        per_image.setdefault(a.get("image_id"), []).append(a)
    report, samples = LabelReport(), []
    wanted = None if only is None else set(only)
    for im in images:
        rel = str(im["file_name"])
        if wanted is not None and rel not in wanted:
            continue
        size = _image_size(root / rel)
        if size is None:
            report.drop("unreadable image", rel)
            report.unreadable.append(rel)
            continue
        w, h = size  # the file, not the JSON, says how big it is
        boxes, cls = [], []
        for a in per_image.get(im["id"], []):
            if a.get("iscrowd", 0):
                continue
            x, y, bw, bh = (list(a.get("bbox", [])) + [np.nan] * 4)[:4]
            boxes.append((x, y, x + bw, y + bh))
            cls.append(cat_index.get(a.get("category_id"), -1))
        b, c = _clean(np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(cls, np.float64), w, h, len(classes), report, rel)
        samples.append(DetSample(rel, w, h, b, c))
    report.log(str(annotations))
    return DetectionSet(root, classes, samples, report, str(annotations))


def _yolo_classes(root: Path) -> list[str]:
    for name in ("classes.txt", "obj.names"):
        if (root / name).is_file():
            return [line.strip() for line in (root / name).read_text().splitlines() if line.strip()]
    if (root / "data.yaml").is_file():
        import yaml

        names = (yaml.safe_load((root / "data.yaml").read_text()) or {}).get("names")
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names)]
        if isinstance(names, list):
            return [str(n) for n in names]
    raise EdgecvError(f"{root}: a YOLO dataset needs classes.txt (one name per line) or data.yaml with names")


def load_yolo(root: str | Path, only: Collection[str] | None = None) -> DetectionSet:
    """YOLO layout: ``root/images/**/X.jpg`` with ``root/labels/**/X.txt`` (``class cx cy w h``, normalised), and
    class names in ``classes.txt`` or ``data.yaml``. An image without a label file has no objects."""
    root = Path(root)
    classes = _yolo_classes(root)
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir():
        raise EdgecvError(f"{root}: a YOLO dataset needs an images/ folder (and labels/)")
    report, samples = LabelReport(), []
    wanted = None if only is None else set(only)
    for path in sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        rel = path.relative_to(images_dir).as_posix()
        if wanted is not None and rel not in wanted:
            continue
        size = _image_size(path)
        if size is None:
            report.drop("unreadable image", rel)
            report.unreadable.append(rel)
            continue
        w, h = size
        rows = []
        label = (labels_dir / rel).with_suffix(".txt")
        if label.is_file():
            for n, line in enumerate(label.read_text().splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    c, cx, cy, bw, bh = (float(v) for v in parts[:5])
                    if len(parts) < 5:
                        raise ValueError
                except ValueError:
                    report.drop("malformed label line", f"{label.name}:{n}")
                    continue
                rows.append((c, (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
        arr = np.asarray(rows, np.float64).reshape(-1, 5)
        b, c = _clean(arr[:, 1:], arr[:, 0], w, h, len(classes), report, rel)
        samples.append(DetSample(rel, w, h, b, c))
    report.log(str(root))
    return DetectionSet(images_dir, classes, samples, report, str(root))


def load_detection(root: str | Path, annotations: str | None = None, only: Collection[str] | None = None) -> DetectionSet:
    """``annotations`` (a COCO JSON) when given; else ``root/annotations.json`` (COCO) or a YOLO layout."""
    root = Path(root)
    if annotations:
        return load_coco(annotations if Path(annotations).is_absolute() else root / annotations, root, only)
    if (root / "annotations.json").is_file():
        return load_coco(root / "annotations.json", root, only)
    if (root / "images").is_dir():
        return load_yolo(root, only)
    raise EdgecvError(f"{root}: no annotations.json (COCO) and no images/ + labels/ (YOLO) found")


def to_coco(ds: DetectionSet, files: list[str]) -> dict:
    """The ground truth of ``files`` as a COCO dict (1-based ids), for pycocotools."""
    index = ds.by_file()
    images, anns = [], []
    for i, f in enumerate(files, 1):
        s = index[f]
        images.append({"id": i, "file_name": f, "width": s.width, "height": s.height})
        for b, c in zip(s.boxes.tolist(), s.classes.tolist()):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": c + 1,
                    "iscrowd": 0,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "area": (b[2] - b[0]) * (b[3] - b[1]),
                }
            )
    return {"images": images, "annotations": anns, "categories": [{"id": i + 1, "name": n} for i, n in enumerate(ds.classes)]}
