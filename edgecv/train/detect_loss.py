"""Detector targets and losses: FCOS-style assignment (a location is positive for a box when it lies inside it,
within ``radius`` strides of its centre, and the box's size suits the location's level; ties go to the smaller
box), Generalized Focal Loss's Quality Focal Loss for classes (a positive's target is the IoU of its predicted box
with its object, Li et al. 2020) and torchvision's ``generalized_box_iou_loss`` for boxes.

Why quality targets: with plain focal loss (target 1 at every positive) a location between two objects of a class
learns a confident class score while its box, pulled between the two, covers both; NMS then keeps that box over the
objects' own. With the IoU as target a box's score says how well it fits, so the union box scores low: on
``benchmarks/detect.py`` test mAP50-95 0.643 -> 0.659 (mAP50 0.934 -> 0.931), and on ``benchmarks/tracking.py``'s
videos fewer confident boxes that fit no object (see the README's tracking figures)."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss


def level_ranges(strides: tuple[int, ...], point_strides: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per location, the range of max(l, t, r, b) its level answers for: [0, 2*s1), [2*s1, 2*s2), ... [.., inf)."""
    edges = [0.0] + [2.0 * s for s in strides[1:]] + [float("inf")]
    lo = torch.empty_like(point_strides)
    hi = torch.empty_like(point_strides)
    for i, s in enumerate(strides):
        at = point_strides == s
        lo[at], hi[at] = edges[i], edges[i + 1]
    return lo, hi


def assign(
    points: torch.Tensor,
    point_strides: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_classes: torch.Tensor,
    radius: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For one image: class index per location (-1 = background) and the matched box per location (A, 4)."""
    a = points.shape[0]
    if len(gt_boxes) == 0:
        return torch.full((a,), -1, dtype=torch.long), torch.zeros(a, 4)
    x, y = points[:, :1], points[:, 1:]
    ltrb = torch.stack([x - gt_boxes[:, 0], y - gt_boxes[:, 1], gt_boxes[:, 2] - x, gt_boxes[:, 3] - y], -1)
    inside = ltrb.min(-1).values > 0
    cx, cy = (gt_boxes[:, 0] + gt_boxes[:, 2]) / 2, (gt_boxes[:, 1] + gt_boxes[:, 3]) / 2
    r = point_strides * radius
    near_centre = ((x - cx).abs() < r) & ((y - cy).abs() < r)
    reach = ltrb.max(-1).values
    ok = inside & near_centre & (reach >= lo) & (reach < hi)
    area = ((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1]))[None].expand(a, -1).clone()
    area[~ok] = float("inf")
    best, idx = area.min(1)
    labels = gt_classes[idx].clone()
    labels[torch.isinf(best)] = -1
    return labels, gt_boxes[idx]


def detection_loss(
    logits: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, matched: torch.Tensor, box_weight: float = 2.0
) -> dict[str, torch.Tensor]:
    """``logits`` (B, A, C), ``boxes`` (B, A, 4) decoded xyxy, ``labels`` (B, A) with -1 = background, ``matched``
    (B, A, 4). Both terms are normalised by the number of positives."""
    pos = labels >= 0
    n = pos.sum().clamp(min=1).float()
    target = torch.zeros_like(logits)
    if pos.any():
        target[pos, labels[pos]] = pair_iou(boxes[pos].detach(), matched[pos])
    cls = quality_focal_loss(logits, target) / n
    box = generalized_box_iou_loss(boxes[pos], matched[pos], reduction="sum") / n if pos.any() else boxes.sum() * 0
    return {"loss": cls + box_weight * box, "cls": cls.detach(), "box": box.detach()}


def quality_focal_loss(logits: torch.Tensor, target: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """GFL's Quality Focal Loss, summed: binary cross-entropy against a soft target in [0, 1], scaled by
    ``|sigmoid(logit) - target| ** beta`` (focal loss's modulation, for a target that is not 0 or 1)."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * (logits.sigmoid() - target).abs().pow(beta)).sum()


def pair_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of each box in ``a`` (n, 4) xyxy with the box in the same row of ``b``."""
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1), (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    return inter / (area_a + area_b - inter).clamp(min=1e-6)
