"""The detector's decoder on a tiny input: exact boxes and scores from known head weights."""

from __future__ import annotations

import math

import pytest
import torch

from edgecv.models import create_backbone, list_backbones
from edgecv.models.detector import Detector


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return Detector(create_backbone("efficientnet_lite0", pretrained="none"), num_classes=3, input_size=64).eval()


def test_locations_and_strides(detector):
    assert detector.points.shape == (8 * 8 + 4 * 4 + 2 * 2, 2)
    assert detector.points[0].tolist() == [4.0, 4.0] and detector.points[63].tolist() == [60.0, 60.0]
    assert detector.points[64].tolist() == [8.0, 8.0] and detector.points[-1].tolist() == [48.0, 48.0]
    boxes, scores = detector(torch.zeros(2, 3, 64, 64))
    assert boxes.shape == (2, 84, 4) and scores.shape == (2, 84, 3)


def test_decoder_exact_values(detector):
    with torch.no_grad():
        for level in detector.head.levels:
            level.box_out.weight.zero_()
            level.box_out.bias.copy_(torch.tensor([math.log(2.0), 0.0, math.log(3.0), math.log(0.5)]))
            level.cls_out.weight.zero_()
            level.cls_out.bias.copy_(torch.tensor([0.0, 2.0, -2.0]))
        boxes, scores = detector(torch.rand(1, 3, 64, 64))
    # stride 8, first location (4, 4): l = 2*8, t = 1*8, r = 3*8, b = 0.5*8
    torch.testing.assert_close(boxes[0, 0], torch.tensor([4 - 16.0, 4 - 8.0, 4 + 24.0, 4 + 4.0]))
    # stride 32, last location (48, 48)
    torch.testing.assert_close(boxes[0, -1], torch.tensor([48 - 64.0, 48 - 32.0, 48 + 96.0, 48 + 16.0]))
    torch.testing.assert_close(scores[0, 5], torch.sigmoid(torch.tensor([0.0, 2.0, -2.0])))


def test_feature_maps_at_the_strides(detector):
    feats = detector.features(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [8, 4, 2]


@pytest.mark.parametrize("name", list_backbones())
def test_every_registered_backbone_gives_a_detector(name):
    det = Detector(create_backbone(name, pretrained="none"), num_classes=2, input_size=64).eval()
    with torch.no_grad():
        boxes, scores = det(torch.zeros(1, 3, 64, 64))
    assert boxes.shape == (1, 84, 4) and scores.shape == (1, 84, 2)
