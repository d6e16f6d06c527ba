"""The drop's error bar and the gate that decides on it (fidelity rows built from known predictions)."""

import numpy as np

from edgecv.export.fidelity import EvalSet, drop_bound
from edgecv.export.gate import recover
from edgecv.export.stats import map50_scorer, paired_drop_interval, tar_scorer, top1_scorer


def _classify_case(n: int, fp32_only: int, artifact_only: int, classes: int = 4):
    """Labels, fp32 logits and artifact logits: both right except on ``fp32_only`` images (the artifact is wrong)
    and ``artifact_only`` images (fp32 is wrong)."""
    labels = np.arange(n) % classes
    right, wrong = np.eye(classes)[labels], np.eye(classes)[(labels + 1) % classes]
    ref, art = right.copy(), right.copy()
    art[:fp32_only] = wrong[:fp32_only]
    ref[fp32_only : fp32_only + artifact_only] = wrong[fp32_only : fp32_only + artifact_only]
    es = EvalSet("test", np.zeros((n, 1, 1, 3), np.uint8), labels, tuple(f"{i}.jpg" for i in range(n)))
    return es, [ref], [art]


def _row(es, ref, art):
    drop = (np.mean(ref[0].argmax(1) == es.labels) - np.mean(art[0].argmax(1) == es.labels)) * 100
    return {
        "file": "model_int8.onnx",
        "drop_points": float(drop),
        "value": 0.0,
        "top1_agreement": 0.0,
        "drop_ci95": paired_drop_interval(top1_scorer, art, ref, es, draws=2000),
    }


def test_a_drop_that_passes_as_a_point_estimate_fails_on_its_upper_bound():
    # 300 test images (the case): int8 loses 4 images fp32 got right and wins 6 it got wrong: the point
    # estimate is -0.67 points ("better"), but 10 disagreements in 300 leave a drop of up to 1.33 points possible
    es, ref, art = _classify_case(300, fp32_only=4, artifact_only=6)
    row = _row(es, ref, art)
    ci = row["drop_ci95"]
    assert round(row["drop_points"], 2) == -0.67 and ci["low"] < row["drop_points"] < ci["high"]
    assert 1.0 < ci["high"] < 3.0 and drop_bound(row) == ci["high"]
    # the gate decides on the bound: the point estimate alone would have passed --max-drop 1
    built = []
    res = recover(lambda keep: built.append(keep) or keep, lambda _path: row, lambda: [("a", 2.0), ("b", 1.0)], 1.0)
    assert res.path is None and built == [(), ("a",), ("a", "b")]
    assert res.attempts[0]["drop_points"] <= 1.0 < res.attempts[0]["drop_bound"]


def test_the_interval_narrows_with_more_images_and_is_zero_when_nothing_disagrees():
    es, ref, art = _classify_case(100, 2, 0)
    small = paired_drop_interval(top1_scorer, art, ref, es, draws=2000)
    es, ref, art = _classify_case(3000, 60, 0)  # the same 2% drop, 30x the images
    large = paired_drop_interval(top1_scorer, art, ref, es, draws=2000)
    assert small["low"] <= 2.0 <= small["high"] and large["low"] <= 2.0 <= large["high"]
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 3
    es, ref, _ = _classify_case(50, 0, 0)
    same = paired_drop_interval(top1_scorer, ref, ref, es, draws=2000)
    assert same["low"] == same["high"] == 0.0
    assert drop_bound({"drop_points": 0.5, "drop_ci95": {"high": None}}) == 0.5  # too few images: the point


def test_embedder_draws_never_pair_an_image_with_its_own_copy():
    emb = np.eye(6)  # six images, six people: no genuine pair at all
    es = EvalSet("test", np.zeros((6, 1, 1, 3), np.uint8), np.arange(6), tuple("abcdef"))
    score = tar_scorer([emb], es)
    assert np.isnan(score(np.array([0, 0, 1, 2, 3, 4])))  # the copy of image 0 is not a genuine pair
    two = EvalSet("test", es.images, np.array([0, 0, 1, 1, 2, 2]), es.files)
    emb2 = np.array([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0.1, 1, 0], [0, 0, 1], [0, 0.1, 1]], float)
    assert tar_scorer([emb2], two)(np.arange(6)) == 1.0


def test_detector_draws_reindex_images_and_boxes():
    # three images, one box each; the outputs find the boxes of images 0 and 1 and miss image 2's
    gt = {
        "images": [{"id": i, "height": 64, "width": 64} for i in (1, 2, 3)],
        "annotations": [
            {"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0} for i in (1, 2, 3)
        ],
        "categories": [{"id": 1, "name": "box"}],
    }
    boxes = np.tile(np.float32([[10, 10, 30, 30]]), (3, 1, 1))
    boxes[2] = [40, 40, 60, 60]
    scores = np.full((3, 1, 1), 0.9, np.float32)
    es = EvalSet("test", np.zeros((3, 64, 64, 3), np.uint8), np.zeros(3), ("a", "b", "c"), targets=gt)
    score = map50_scorer([boxes, scores], es)
    assert 0 < score(np.arange(3)) < 1
    assert score(np.array([0, 0, 1])) == 1.0 and score(np.array([2, 2, 2])) == 0.0


def test_detector_draws_score_what_a_full_accumulate_scores():
    # 3 classes, 24 images of 0-5 boxes; noisy detections (shifted, missed, extra, crowded) scored on 40 draws both by
    # the scorer (IoU 0.5 / area all / most detections only) and by pycocotools' full accumulate on the same draw
    from edgecv.evaluate.detect import coco_evaluated, score_outputs, to_coco_results

    rng, n, classes = np.random.default_rng(3), 24, 3
    gt = {"images": [{"id": i + 1, "height": 128, "width": 128} for i in range(n)], "annotations": []}
    gt["categories"] = [{"id": c + 1, "name": f"c{c}"} for c in range(classes)]
    boxes, scores = np.zeros((n, 12, 4), np.float32), np.zeros((n, 12, classes), np.float32)
    for i in range(n):
        for j in range(rng.integers(0, 6)):
            x, y, w, h = rng.uniform(0, 80, 2).tolist() + rng.uniform(6, 48, 2).tolist()
            c = int(rng.integers(classes))
            ann = {"id": len(gt["annotations"]) + 1, "image_id": i + 1, "category_id": c + 1, "iscrowd": 0}
            gt["annotations"].append({**ann, "bbox": [x, y, w, h], "area": w * h})
            if rng.random() < 0.85:  # found, more or less where it is
                dx, dy = rng.normal(0, w / 5), rng.normal(0, h / 5)
                boxes[i, j] = [x + dx, y + dy, x + dx + w, y + dy + h]
                scores[i, j, c] = rng.uniform(0.2, 1)
        for j in range(6, 12):  # false boxes, some of another class on a real one
            x, y = rng.uniform(0, 100, 2)
            boxes[i, j] = [x, y, x + rng.uniform(6, 28), y + rng.uniform(6, 28)]
            scores[i, j, rng.integers(classes)] = rng.uniform(0.05, 0.7)
    es = EvalSet("test", np.zeros((n, 128, 128, 3), np.uint8), np.zeros(n), tuple(map(str, range(n))), targets=gt)
    score = map50_scorer([boxes, scores], es)

    dets = score_outputs([boxes, scores], gt, [c["name"] for c in gt["categories"]])[1]
    full = coco_evaluated(gt, to_coco_results(dets, list(range(1, n + 1))))
    per_image, ids, seen = list(full.evalImgs), list(full._paramsEval.imgIds), set()
    for _ in range(40):
        idx = rng.integers(0, n, n)
        full.evalImgs = [per_image[b * n + i] for b in range(len(per_image) // n) for i in idx.tolist()]
        full.params.imgIds = full._paramsEval.imgIds = [ids[i] for i in idx.tolist()]
        full.accumulate()
        p = full.eval["precision"][0, :, :, 0, -1]
        assert score(idx) == float(p[p > -1].mean())
        seen.add(score(idx))
    assert len(seen) > 30 and 0.05 < min(seen) < max(seen) < 0.95  # draws that differ, neither 0 nor 1 in reach
