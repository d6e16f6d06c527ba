"""Light anchor-free detector: a registry backbone's stride-8/16/32 feature maps, an FPN-lite neck (1x1 laterals,
nearest-upsample + add, depthwise-separable 3x3) and one shared head (depthwise-separable convs, then class logits
and four box distances per location, FCOS-style). Everything is conv / BN / ReLU6 / add / nearest upsample, which
int8 kernels on the edge handle well.

``forward`` returns what the artifact outputs: decoded ``boxes`` (B, A, 4) as xyxy pixels of the input tensor and
``scores`` (B, A, C) after the sigmoid, so the device needs no anchors or strides: only NMS. ``forward_train``
returns logits and boxes for the losses. No training code here.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgecv.models._registry import Backbone


def _stride_outputs(backbone: Backbone, size: int, strides: tuple[int, ...]) -> tuple[nn.Sequential, list[int], list[int]]:
    """The backbone's stem + stage modules as one Sequential (its head conv and pooling left out), and for each
    stride the index of the last module whose output has that stride, and its channels."""
    units = backbone.units()
    body = [m for group in units[:-1] for m in group] if len(units) > 2 else [m for g in units for m in g]
    seq = nn.Sequential(*body)
    x = torch.zeros(1, 3, size, size)
    found: dict[int, tuple[int, int]] = {}
    with torch.no_grad():
        was = seq.training
        seq.eval()
        for i, m in enumerate(seq):
            x = m(x)
            if x.dim() == 4:
                found[size // x.shape[-1]] = (i, x.shape[1])
        seq.train(was)
    missing = [s for s in strides if s not in found]
    if missing:
        raise ValueError(f"backbone {backbone.spec.name} has no feature map at stride {missing} (has {sorted(found)})")
    last = max(found[s][0] for s in strides)
    return nn.Sequential(*list(seq)[: last + 1]), [found[s][0] for s in strides], [found[s][1] for s in strides]


def _dw_sep(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                         nn.ReLU6(inplace=True), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU6(inplace=True))


class Detector(nn.Module):
    def __init__(self, backbone: Backbone, num_classes: int, input_size: int = 320,
                 strides: tuple[int, ...] = (8, 16, 32), channels: int = 64, head_convs: int = 2):
        super().__init__()
        self.num_classes, self.input_size, self.strides = num_classes, input_size, tuple(strides)
        self.backbone_name = backbone.spec.name
        self.body, self.taps, feat_channels = _stride_outputs(backbone, input_size, self.strides)
        self.laterals = nn.ModuleList(nn.Sequential(nn.Conv2d(c, channels, 1, bias=False), nn.BatchNorm2d(channels))
                                      for c in feat_channels)
        self.smooth = nn.ModuleList(_dw_sep(channels, channels) for _ in feat_channels)
        self.head = nn.Sequential(*(_dw_sep(channels, channels) for _ in range(head_convs)))
        self.cls_out = nn.Conv2d(channels, num_classes, 1)
        self.box_out = nn.Conv2d(channels, 4, 1)
        nn.init.constant_(self.cls_out.bias, -4.6)  # prior 0.01 (focal loss; RetinaNet)
        nn.init.zeros_(self.box_out.weight)
        nn.init.constant_(self.box_out.bias, 1.0)  # exp(1) x stride: boxes ~5 strides wide at the start
        points, scale = [], []
        for s in self.strides:
            n = input_size // s
            ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
            points.append(torch.stack([(xs + 0.5) * s, (ys + 0.5) * s], -1).reshape(-1, 2))
            scale.append(torch.full((n * n, 1), float(s)))
        self.register_buffer("points", torch.cat(points).float(), persistent=False)  # (A, 2) location centres
        self.register_buffer("point_strides", torch.cat(scale), persistent=False)  # (A, 1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone maps at ``self.strides`` (what stage 1 caches while the backbone is frozen)."""
        out = []
        for i, m in enumerate(self.body):
            x = m(x)
            if i in self.taps:
                out.append(x)
        return [out[sorted(self.taps).index(t)] for t in self.taps]

    def forward_features(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, A, C) and decoded xyxy boxes (B, A, 4) from backbone maps."""
        lat = [lateral(f) for lateral, f in zip(self.laterals, feats)]
        for i in range(len(lat) - 2, -1, -1):  # top-down: coarse to fine
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[-2:], mode="nearest")
        logits, dist = [], []
        for smooth, f in zip(self.smooth, lat):
            h = self.head(smooth(f))
            logits.append(self.cls_out(h).flatten(2))
            dist.append(self.box_out(h).flatten(2))
        logits = torch.cat(logits, 2).transpose(1, 2)
        ltrb = torch.exp(torch.cat(dist, 2).transpose(1, 2).clamp(-6.0, 6.0)) * self.point_strides
        boxes = torch.cat([self.points - ltrb[..., :2], self.points + ltrb[..., 2:]], -1)
        return logits, boxes

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_features(self.features(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, boxes = self.forward_train(x)
        return boxes, torch.sigmoid(logits)

    def trainable_backbone_units(self) -> list[nn.Module]:
        """The body's modules, input to output: stage 2 unfreezes the last N."""
        return list(self.body)
