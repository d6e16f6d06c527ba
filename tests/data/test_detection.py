"""COCO and YOLO layouts read the same boxes; bad labels are dropped and counted, never a crash; box-aware
augmentation moves the boxes with the pixels."""

from __future__ import annotations

import json

import numpy as np

from edgecv.data.detection import load_coco, load_detection, load_yolo, to_coco
from edgecv.data.samples import draw_shape, write_detect_sample
from edgecv.recipes import DetectAugmentSpec
from edgecv.train.detect import box_augment


def test_coco_and_yolo_layouts_give_the_same_boxes(tmp_path):
    coco = load_detection(write_detect_sample(tmp_path / "coco", images=12, size=96, seed=3))
    yolo = load_detection(write_detect_sample(tmp_path / "yolo", images=12, size=96, seed=3, layout="yolo"))
    assert coco.classes == yolo.classes and len(coco.samples) == len(yolo.samples) == 12
    for a, b in zip(coco.samples, yolo.samples):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_array_equal(a.classes, b.classes)
    assert not coco.report.dropped and not yolo.report.dropped and yolo.report.clipped == 0


def test_bad_coco_labels_are_dropped_and_counted(tmp_path):
    root = write_detect_sample(tmp_path / "d", images=3, size=64, seed=0)
    data = json.loads((root / "annotations.json").read_text())
    img = data["images"][0]["id"]
    bad = [
        ([70, 70, 10, 10], 1, "box outside the image"),
        ([5, 5, 0, 8], 1, "zero-area box"),
        ([5, 5, 8, 8], 99, "unknown class id"),
        ([-4, 10, 20, 20], 1, None),
    ]  # the last is clipped, kept
    for k, (bbox, cat, _) in enumerate(bad):
        data["annotations"].append({"id": 1000 + k, "image_id": img, "category_id": cat, "bbox": bbox, "iscrowd": 0})
    (root / "images" / "broken.jpg").write_bytes(b"not a jpeg")
    data["images"].append({"id": 77, "file_name": "images/broken.jpg", "width": 64, "height": 64})
    (root / "annotations.json").write_text(json.dumps(data))
    ds = load_coco(root / "annotations.json")
    assert ds.report.dropped == {"box outside the image": 1, "zero-area box": 1, "unknown class id": 1, "unreadable image": 1}
    assert ds.report.clipped == 1 and len(ds.samples) == 3 and ds.report.unreadable == ["images/broken.jpg"]
    clipped = ds.samples[0].boxes[-1]
    np.testing.assert_allclose(clipped, [0, 10, 16, 30])


def test_bad_yolo_lines_are_dropped_and_counted(tmp_path):
    root = write_detect_sample(tmp_path / "y", images=2, size=64, seed=0, layout="yolo")
    label = root / "labels" / "00000.txt"
    label.write_text(label.read_text() + "7 0.5 0.5 0.2 0.2\nnot a label\n0 0.5 0.5 0 0.3\n")
    ds = load_yolo(root)
    assert ds.report.dropped == {"unknown class id": 1, "malformed label line": 1, "zero-area box": 1}


def test_to_coco_round_trips_boxes(tmp_path):
    ds = load_detection(write_detect_sample(tmp_path / "c", images=4, size=64, seed=1))
    gt = to_coco(ds, [s.file for s in ds.samples])
    assert len(gt["annotations"]) == sum(len(s.classes) for s in ds.samples)
    x, y, w, h = gt["annotations"][0]["bbox"]
    np.testing.assert_allclose([x, y, x + w, y + h], ds.samples[0].boxes[0])


def test_box_augment_moves_boxes_with_the_pixels():
    spec = DetectAugmentSpec(hflip=1.0, scale=(0.7, 1.3), translate=0.15, color_jitter=0.0)
    aug = box_augment(spec)
    for seed in range(8):
        img = np.full((128, 128, 3), 114, np.uint8)
        box = draw_shape(img, "square", 50, 60, 22, 0.3, (250, 20, 20))
        aug.set_random_seed(seed)
        out = aug(image=img, bboxes=np.float32([box]), classes=np.int64([0]))
        if not len(out["bboxes"]):
            continue  # pushed out of view: dropped, which is what min_visibility asks
        ys, xs = np.nonzero(np.abs(out["image"].astype(int) - 114).sum(2) > 60)
        drawn = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        np.testing.assert_allclose(out["bboxes"][0], drawn, atol=3)


def test_sample_detect_command_writes_a_loadable_set(tmp_path):
    from click.testing import CliRunner

    from edgecv.cli import cli

    for layout in ("coco", "yolo"):
        r = CliRunner().invoke(
            cli, ["sample", "detect", str(tmp_path / layout), "--images", "3", "--size", "64", "--layout", layout]
        )
        assert r.exit_code == 0, r.output
        ds = load_detection(tmp_path / layout)
        assert len(ds.samples) == 3 and all(len(s.classes) >= 1 for s in ds.samples)


def test_only_reads_the_files_asked_for(tmp_path):
    for layout in ("coco", "yolo"):
        root = write_detect_sample(tmp_path / layout, images=4, size=64, seed=0, layout=layout)
        full = load_detection(root)
        (full.root / full.samples[3].file).write_bytes(b"corrupt, but not asked for")
        wanted = [full.samples[2].file, full.samples[0].file]
        part = load_detection(root, only=wanted)
        assert sorted(s.file for s in part.samples) == sorted(wanted) and not part.report.dropped
        np.testing.assert_array_equal(part.by_file()[wanted[0]].boxes, full.by_file()[wanted[0]].boxes)


def test_busy_scenes_overlap_shapes_and_cross_them_with_bars():
    from edgecv.data.samples import _iou, background_photos, detect_image

    rng, photos = np.random.default_rng(0), background_photos()
    bars = overlaps = 0
    for _ in range(20):
        img, boxes, cls = detect_image(96, rng, photos, max_objects=6, occlusion=1.0)
        assert len(boxes) == len(cls) and all(0 <= b[0] < b[2] <= 96 and 0 <= b[1] < b[3] <= 96 for b in boxes)
        flat_cols = (img == img[:1]).all(axis=(0, 2))  # a column of one colour from top to bottom: a bar
        flat_rows = (img == img[:, :1]).all(axis=(1, 2))
        bars += bool(flat_cols.sum() >= 3 or flat_rows.sum() >= 3)
        overlaps += any(_iou(a, b) > 0.1 for k, a in enumerate(boxes) for b in boxes[k + 1 :])
    assert bars == 20 and overlaps >= 3, (bars, overlaps)
