"""FCOS-style assignment against a brute-force count, and the losses' behaviour at the optimum."""

from __future__ import annotations

import torch

from edgecv.models import create_backbone
from edgecv.models.detector import Detector
from edgecv.train.detect_loss import assign, detection_loss, level_ranges


def _model():
    return Detector(create_backbone("efficientnet_lite0", pretrained="none"), num_classes=2, input_size=128)


def test_assignment_matches_a_brute_force_count():
    m = _model()
    lo, hi = level_ranges(m.strides, m.point_strides)
    gt = torch.tensor([[30.0, 30.0, 70.0, 70.0], [60.0, 10.0, 124.0, 120.0]])
    labels, matched = assign(m.points, m.point_strides, lo, hi, gt, torch.tensor([0, 1]), radius=1.5)
    expected = 0
    for (x, y), s in zip(m.points.tolist(), m.point_strides[:, 0].tolist()):
        for k, (x1, y1, x2, y2) in enumerate(gt.tolist()):
            reach = max(x - x1, y - y1, x2 - x, y2 - y)
            lo_k = {8: 0, 16: 32, 32: 64}[s]
            hi_k = {8: 32, 16: 64, 32: float("inf")}[s]
            inside = min(x - x1, y - y1, x2 - x, y2 - y) > 0
            near = abs(x - (x1 + x2) / 2) < 1.5 * s and abs(y - (y1 + y2) / 2) < 1.5 * s
            expected += inside and near and lo_k <= reach < hi_k
    assert int((labels >= 0).sum()) == expected > 0
    assert set(labels[labels >= 0].tolist()) == {0, 1}
    assert torch.equal(matched[labels == 0][0], gt[0])
    # the 40 px box belongs to stride 8 (reach about 20 < 32); the 64 x 110 one (reach about 55) to the coarser levels
    assert set(m.point_strides[labels == 0, 0].tolist()) == {8.0}
    assert 16.0 in set(m.point_strides[labels == 1, 0].tolist()) <= {16.0, 32.0}


def test_no_boxes_means_all_background():
    m = _model()
    lo, hi = level_ranges(m.strides, m.point_strides)
    labels, _ = assign(m.points, m.point_strides, lo, hi, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 1.5)
    assert (labels == -1).all()


def test_loss_is_lower_for_the_right_answer():
    labels = torch.tensor([[0, -1, 1]])
    matched = torch.tensor([[[0, 0, 10, 10], [0, 0, 1, 1], [5, 5, 20, 30]]], dtype=torch.float32)
    good_logits = torch.tensor([[[8.0, -8.0], [-8.0, -8.0], [-8.0, 8.0]]])
    good = detection_loss(good_logits, matched.clone(), labels, matched)
    bad = detection_loss(-good_logits, matched + 5, labels, matched)
    assert float(good["box"]) < 1e-6 and float(good["cls"]) < 1e-3
    assert float(bad["loss"]) > 10 * float(good["loss"])


def test_a_positive_s_class_target_is_how_well_its_box_fits():
    """Quality focal loss: a location whose box covers its 10 x 10 object and as much again (IoU 0.5) is right to
    score 0.5, and is pushed down from 0.9 and up from 0.1; background is pushed to 0."""
    labels = torch.tensor([[0, -1]])
    matched = torch.tensor([[[0, 0, 10, 10], [0, 0, 1, 1]]], dtype=torch.float32)
    boxes = torch.tensor([[[0, 0, 10, 20], [0, 0, 1, 1]]], dtype=torch.float32)

    def cls_loss_and_grads(p: float) -> tuple[float, float, float]:
        """The class loss with the positive's score at ``p`` (the rest at 0.2), and the gradients on the positive's
        logit and on the background location's logit of the same class."""
        logits = torch.tensor([[[p, 0.2], [0.2, 0.2]]]).logit().requires_grad_()
        out = detection_loss(logits, boxes, labels, matched)
        out["loss"].backward()
        return float(out["cls"]), float(logits.grad[0, 0, 0]), float(logits.grad[0, 1, 0])

    _, at_iou, background = cls_loss_and_grads(0.5)
    assert abs(at_iou) < 1e-6 and background > 0
    (high, down, _), (low, up, _) = cls_loss_and_grads(0.9), cls_loss_and_grads(0.1)
    assert down > 0 > up and high > 0.05 and low > 0.05
