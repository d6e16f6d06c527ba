"""Built-in sample data: shapes drawn onto crops of real photographs (scikit-image's bundled images).

Honest synthetic data: the labels and boxes are exact by construction, the backgrounds are real
photos, so a pretrained backbone has real texture to ignore. Used by the README demo and tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edgecv._deps import require
from edgecv.errors import EdgecvError

SHAPES = ("circle", "cross", "ring", "square", "star", "triangle")
_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "brick",
    "grass",
    "gravel",
    "camera",
    "coins",
    "page",
)


_PEOPLE = ("astronaut", "camera")  # photos with a real face in them


def background_photos(people: bool = True) -> list[np.ndarray]:
    """Real photos that ship inside scikit-image (no download), as uint8 RGB; ``people=False``: only those without
    a person in them (backgrounds for face scenes, whose truth is the faces put there)."""
    data = require("skimage.data", "train", "the built-in sample photos")
    photos = []
    for name in _PHOTOS if people else [n for n in _PHOTOS if n not in _PEOPLE]:
        img = np.asarray(getattr(data, name)())
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        photos.append(np.ascontiguousarray(img[:, :, :3]).astype(np.uint8))
    return photos


def photo_crops(size: int) -> np.ndarray:
    """Three square crops of every bundled photo (whole, lower-right quarter, centre), resized to size x size:
    real-image calibration and agreement data for tests and benchmarks."""
    crops = []
    for img in background_photos():
        h, w = img.shape[:2]
        s = min(h, w)
        for y, x, side in ((0, 0, s), (h - s // 2, w - s // 2, s // 2), (h // 4, w // 4, s // 2)):
            crops.append(cv2.resize(np.ascontiguousarray(img[y : y + side, x : x + side]), (size, size)))
    return np.stack(crops)


def random_background(photos: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    img = photos[rng.integers(len(photos))]
    h, w = img.shape[:2]
    side = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return cv2.resize(img[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)


def _polygon(n: int, cx: float, cy: float, r: float, angle: float, inner: float | None = None) -> np.ndarray:
    k = n * 2 if inner else n
    t = angle + np.arange(k) * 2 * np.pi / k
    rad = np.where(np.arange(k) % 2 == 1, r * inner, r) if inner else np.full(k, r)
    return np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], axis=1).round().astype(np.int32)


def shape_mask(shape_hw: tuple[int, int], kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """The pixels ``kind`` covers (uint8, 0-255, antialiased) on a canvas of ``shape_hw``."""
    mask = np.zeros(shape_hw, np.uint8)
    if kind == "circle":
        cv2.circle(mask, (int(cx), int(cy)), int(r), 255, -1, cv2.LINE_AA)
    elif kind == "ring":
        cv2.circle(mask, (int(cx), int(cy)), int(r), 255, max(2, int(r * 0.3)), cv2.LINE_AA)
    elif kind == "square":
        cv2.fillPoly(mask, [_polygon(4, cx, cy, r, angle)], 255, cv2.LINE_AA)
    elif kind == "triangle":
        cv2.fillPoly(mask, [_polygon(3, cx, cy, r, angle)], 255, cv2.LINE_AA)
    elif kind == "star":
        cv2.fillPoly(mask, [_polygon(5, cx, cy, r, angle, inner=0.45)], 255, cv2.LINE_AA)
    elif kind == "cross":
        w = r * 0.35
        arm = np.array([[-r, -w], [r, -w], [r, w], [-r, w]])
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        for a in (arm, arm[:, ::-1]):
            cv2.fillPoly(mask, [(a @ rot.T + [cx, cy]).round().astype(np.int32)], 255, cv2.LINE_AA)
    else:
        raise EdgecvError(f"unknown shape {kind!r}; known: {', '.join(SHAPES)}")
    return mask


def draw_shape(
    canvas: np.ndarray, kind: str, cx: float, cy: float, r: float, angle: float, color: tuple[int, int, int]
) -> tuple[float, float, float, float]:
    """Draw ``kind`` in place; return its exact xyxy box (the extent of the drawn pixels)."""
    mask = shape_mask(canvas.shape[:2], kind, cx, cy, r, angle)
    alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
    canvas[:] = (canvas * (1 - alpha) + np.asarray(color, np.float32) * alpha).round().astype(np.uint8)
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def random_color(rng: np.random.Generator, background: np.ndarray) -> tuple[int, int, int]:
    """A saturated colour that stands out from the background's mean."""
    mean = background.reshape(-1, 3).mean(0)
    for _ in range(20):
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(150, 256), rng.integers(150, 256)]]])
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(int)
        if np.abs(rgb - mean).sum() > 120:
            break
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


def shape_image(kind: str, size: int, rng: np.random.Generator, photos: list[np.ndarray]) -> np.ndarray:
    img = random_background(photos, size, rng)
    r = rng.uniform(0.18, 0.34) * size
    cx, cy = rng.uniform(r + 2, size - r - 2, size=2)
    draw_shape(img, kind, cx, cy, r, rng.uniform(0, 2 * np.pi), random_color(rng, img))
    return img


def write_classify_sample(
    out: str | Path, per_class: int = 60, size: int = 192, seed: int = 0, classes: tuple[str, ...] = SHAPES
) -> Path:
    """Write an ImageFolder of shapes on real photos: ``out/<shape>/<i>.jpg``."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    photos = background_photos()
    for kind in classes:
        (out / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rgb = shape_image(kind, size, rng, photos)
            cv2.imwrite(str(out / kind / f"{i:04d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return out


def write_sample_video(
    out: str | Path, images: str | Path, frames: int = 120, fps: float = 10.0, seed: int = 0, size: tuple[int, int] = (320, 240)
) -> Path:
    """A clip (MJPEG .avi or mp4v .mp4) of ``frames`` images drawn at random from the folder ``images``."""
    files = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise EdgecvError(f"{images}: no images to make a video of")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if out.suffix.lower() == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(out), fourcc, fps, size)
    rng = np.random.default_rng(seed)
    for i in rng.integers(0, len(files), frames):
        writer.write(cv2.resize(cv2.imread(str(files[i])), size, interpolation=cv2.INTER_AREA))
    writer.release()
    return out


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def detect_image(
    size: int,
    rng: np.random.Generator,
    photos: list[np.ndarray],
    classes: tuple[str, ...] = SHAPES,
    max_objects: int = 4,
    radius: tuple[float, float] = (0.05, 0.16),
    occlusion: float = 0.0,
) -> tuple[np.ndarray, list, list]:
    """One image with 1..max_objects shapes on a real photo, and their exact boxes (the drawn pixels' extent) and
    class indices. Shapes overlap little (IoU <= 0.1), so every box is visible; except, with probability
    ``occlusion``, a busy scene: shapes may overlap (IoU <= 0.5, the later drawn on top) and one or two bars
    (grey or coloured, 4-12% of the side) cross the image over them. A shape still at least half visible keeps its
    whole box (what a tracker follows through an occlusion); one more hidden than that is not labelled."""
    img = random_background(photos, size, rng)
    busy = occlusion > 0 and rng.random() < occlusion
    boxes: list[tuple[float, ...]] = []
    cls: list[int] = []
    drawn: list[tuple] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _try in range(10):
            r = rng.uniform(*radius) * size
            cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
            guess = (cx - r, cy - r, cx + r, cy + r)
            if all(_iou(guess, b) <= (0.5 if busy else 0.1) for b in boxes):
                break
        else:
            continue
        k = int(rng.integers(len(classes)))
        angle = rng.uniform(0, 2 * np.pi)
        boxes.append(draw_shape(img, classes[k], cx, cy, r, angle, random_color(rng, img)))
        cls.append(k)
        drawn.append((classes[k], cx, cy, r, angle))
    if not busy:
        return img, boxes, cls
    covered = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(1, 3))):
        w = int(rng.uniform(0.04, 0.12) * size)
        at = int(rng.integers(0, size - w))
        colour = np.full(3, rng.uniform(60, 200)) if rng.random() < 0.5 else np.asarray(random_color(rng, img), float)
        if rng.random() < 0.5:
            img[:, at : at + w] = colour.astype(np.uint8)
            covered[:, at : at + w] = True
        else:
            img[at : at + w] = colour.astype(np.uint8)
            covered[at : at + w] = True
    seen = visibility([shape_mask((size, size), *d) > 127 for d in drawn], covered)
    keep = [i for i in range(len(drawn)) if seen[i] >= 0.5]
    return img, [boxes[i] for i in keep], [cls[i] for i in keep]


def visibility(masks: list[np.ndarray], covered: np.ndarray) -> np.ndarray:
    """The share of each shape's pixels (``masks``, bool, in drawing order: the last is on top) that neither the
    shapes drawn after it nor ``covered`` (what was drawn over them all) hides."""
    covered = covered.copy()
    out = np.zeros(len(masks))
    for k in reversed(range(len(masks))):
        out[k] = (masks[k] & ~covered).sum() / max(int(masks[k].sum()), 1)
        covered |= masks[k]
    return out


def write_detect_sample(
    out: str | Path,
    images: int = 300,
    size: int = 320,
    seed: int = 0,
    classes: tuple[str, ...] = SHAPES,
    layout: str = "coco",
    max_objects: int = 4,
    occlusion: float = 0.0,
) -> Path:
    """Shapes pasted on real photos with exact boxes: ``out/images/*.jpg`` plus ``out/annotations.json`` (COCO)
    or ``out/labels/*.txt`` + ``out/classes.txt`` (YOLO). ``max_objects`` and ``occlusion``: ``detect_image``."""
    if layout not in ("coco", "yolo"):
        raise EdgecvError(f"layout must be coco or yolo, got {layout!r}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng, photos = np.random.default_rng(seed), background_photos()
    coco: dict = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(classes)]}
    if layout == "yolo":
        (out / "labels").mkdir(exist_ok=True)
        (out / "classes.txt").write_text("\n".join(classes) + "\n")
    for i in range(images):
        img, boxes, cls = detect_image(size, rng, photos, classes, max_objects, occlusion=occlusion)
        name = f"{i:05d}.jpg"
        cv2.imwrite(str(out / "images" / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        if layout == "yolo":
            lines = [
                f"{c} {(b[0] + b[2]) / 2 / size:.6f} {(b[1] + b[3]) / 2 / size:.6f} {(b[2] - b[0]) / size:.6f} "
                f"{(b[3] - b[1]) / size:.6f}"
                for b, c in zip(boxes, cls)
            ]
            (out / "labels" / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")
            continue
        coco["images"].append({"id": i + 1, "file_name": f"images/{name}", "width": size, "height": size})
        for b, c in zip(boxes, cls):
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": i + 1,
                    "category_id": c + 1,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "iscrowd": 0,
                    "area": (b[2] - b[0]) * (b[3] - b[1]),
                }
            )
    if layout == "coco":
        (out / "annotations.json").write_text(json.dumps(coco))
    return out
