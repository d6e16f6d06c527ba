"""Detector metrics with pycocotools: mAP@0.5, mAP@0.5:0.95, AP per class, the PR curve (PNG) and sample
predictions drawn on test images. Predictions are decoded by the runtime's own postprocessing (the device's
NMS), so the number here and the one the export report measures on artifacts come from the same code."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edgecv._deps import require
from edgecv.artifact import ArtifactMeta, DetectDecoder, DetectThresholds
from edgecv.data.detection import DetectionSet, to_coco
from edgecv.results import Detections
from edgecv.runtime.preprocess import letterbox_transform

if TYPE_CHECKING:
    import torch

EVAL_CONF = 0.001  # COCO practice: score every box, let the PR curve decide
EVAL_IOU = 0.6
MAX_DETS = 100


def to_coco_results(dets: list[Detections], image_ids: list[int]) -> list[dict[str, Any]]:
    out = []
    for d, i in zip(dets, image_ids):
        for b, s, c in zip(d.xyxy.tolist(), d.scores.tolist(), d.class_ids.tolist()):
            out.append(
                {"image_id": i, "category_id": int(c) + 1, "score": float(s), "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
            )
    return out


def score_outputs(
    outputs: list, gt: dict[str, Any], classes: list[str], transforms: list | None = None
) -> tuple[dict[str, Any], list[Detections]]:
    """Per-image model outputs (boxes, scores[, in-graph NMS selection]) -> the runtime's postprocessing (the
    device's NMS; mapped to image pixels by ``transforms`` when given) -> COCOeval against ``gt``."""
    from edgecv.runtime.postprocess.detect import detect_postprocess

    meta = ArtifactMeta(  # what the runtime's postprocess reads of canonical outputs: the labels
        task="detect",
        labels=list(classes),
        input_size=(1, 1),
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
        decoder=DetectDecoder(type="ltrb-points", outputs=("boxes", "scores"), nms_in_graph=None, strides=()),
        thresholds=DetectThresholds(conf=EVAL_CONF, iou=EVAL_IOU, track=EVAL_CONF),  # (nothing is tracked here)
    )
    per_image = list(zip(*outputs))
    dets = [
        detect_postprocess(
            [np.asarray(o)[None] if k < 2 else np.asarray(o) for k, o in enumerate(outs)],
            meta,
            conf=EVAL_CONF,
            iou=EVAL_IOU,
            transform=tf,
            max_det=MAX_DETS,
        )
        for outs, tf in zip(per_image, transforms or [None] * len(per_image))
    ]
    return coco_map(gt, to_coco_results(dets, list(range(1, len(dets) + 1))), classes), dets


def coco_evaluated(gt: dict[str, Any], results: list[dict[str, Any]]):
    """A pycocotools ``COCOeval`` (bbox, max dets 1/10/``MAX_DETS``) that has matched ``results`` to ``gt`` image by
    image (``evaluate``), before ``accumulate``; ``results`` must not be empty."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {**gt, "info": {}}
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        ev.params.maxDets = [1, 10, MAX_DETS]
        ev.evaluate()
    return ev


def coco_map(gt: dict[str, Any], results: list[dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    """COCOeval bbox on ``gt`` (a COCO dict, 1-based category ids) -> map50, map50_95, per-class AP, and the
    precision array at IoU 0.5 (recall x class) for the PR curve."""
    require(
        "pycocotools",
        "train",
        "mAP (pycocotools)",
        how="it is in edgecv[train] and edgecv[export], or alone (no torch): pip install pycocotools==2.0.10",
    )
    if not results:
        return {
            "map50": 0.0,
            "map50_95": 0.0,
            "per_class": {c: {"ap50": 0.0, "ap50_95": 0.0} for c in classes},
            "pr50": np.zeros((101, len(classes))).tolist(),
            "images": len(gt["images"]),
        }
    ev = coco_evaluated(gt, results)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [T iou, R recall, K class, A area, M maxdets]

    def ap(p: np.ndarray) -> float:
        p = p[p > -1]
        return float(p.mean()) if p.size else float("nan")

    per_class = {c: {"ap50": ap(prec[0, :, k, 0, -1]), "ap50_95": ap(prec[:, :, k, 0, -1])} for k, c in enumerate(classes)}
    return {
        "map50": float(ev.stats[1]),
        "map50_95": float(ev.stats[0]),
        "per_class": per_class,
        "pr50": np.where(prec[0, :, :, 0, -1] > -1, prec[0, :, :, 0, -1], np.nan).tolist(),
        "images": len(gt["images"]),
    }


def plot_pr(metrics: dict[str, Any], classes: list[str], path: str | Path) -> None:
    require("matplotlib", "train", "plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pr = np.asarray(metrics["pr50"], dtype=float)
    recall = np.linspace(0, 1, pr.shape[0])
    fig, ax = plt.subplots(figsize=(5, 4))
    for k, c in enumerate(classes):
        ax.plot(recall, pr[:, k], label=f"{c} {metrics['per_class'][c]['ap50']:.3f}", lw=1)
    ax.plot(recall, np.nanmean(pr, 1), "k", lw=2, label=f"all {metrics['map50']:.3f} mAP@0.5")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="PR curve, IoU 0.5")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_samples(images: list[np.ndarray], dets: list[Detections], path: str | Path, conf: float = 0.3, cols: int = 4) -> None:
    """A grid of RGB ``images`` with their detections above ``conf`` drawn (the runtime's annotator)."""
    from edgecv.runtime.sinks import annotate

    tiles = []
    for img, d in zip(images, dets):
        keep = d.scores >= conf
        shown = Detections(
            d.xyxy[keep], d.scores[keep], d.class_ids[keep], tuple(np.asarray(d.labels, dtype=object)[keep]) if d.labels else ()
        )
        tile = annotate(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), shown)
        tiles.append(cv2.resize(tile, (256, 256)))
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)]
    cv2.imwrite(str(path), np.concatenate(rows, 0))


class Evaluator:
    """mAP of a split: predictions -> runtime NMS -> pycocotools against the split's ground truth."""

    def __init__(self, ds: DetectionSet, files: list[str], size: int):
        self.gt, self.classes = to_coco(ds, files), ds.classes
        index = ds.by_file()
        self.transforms = [letterbox_transform((s.height, s.width), (size, size)) for s in (index[f] for f in files)]

    def __call__(self, boxes: torch.Tensor, scores: torch.Tensor) -> tuple[dict[str, Any], list[Detections]]:
        return score_outputs([boxes.numpy(), scores.numpy()], self.gt, self.classes, self.transforms)
