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

from edgecv.models._transfer import TransferModel
from edgecv.models.backbone import Backbone


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
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU6(inplace=True),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class FPNLite(nn.Module):
    """1x1 laterals to ``channels``, top-down nearest-upsample + add, a depthwise-separable 3x3 per level."""

    def __init__(self, in_channels: list[int], channels: int):
        super().__init__()
        self.laterals = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, channels, 1, bias=False), nn.BatchNorm2d(channels)) for c in in_channels
        )
        self.smooth = nn.ModuleList(_dw_sep(channels, channels) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        lat = [lateral(f) for lateral, f in zip(self.laterals, feats)]
        for i in range(len(lat) - 2, -1, -1):  # top-down: coarse to fine
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[-2:], mode="nearest")
        return [smooth(f) for smooth, f in zip(self.smooth, lat)]


class LevelHead(nn.Module):
    """Depthwise-separable convs, then class logits and 4 log box distances per location."""

    def __init__(self, channels: int, num_classes: int, convs: int):
        super().__init__()
        self.tower = nn.Sequential(*(_dw_sep(channels, channels) for _ in range(convs)))
        self.cls_out = nn.Conv2d(channels, num_classes, 1)
        self.box_out = nn.Conv2d(channels, 4, 1)
        nn.init.constant_(self.cls_out.bias, -4.6)  # prior 0.01 (focal loss; RetinaNet)
        nn.init.zeros_(self.box_out.weight)
        nn.init.constant_(self.box_out.bias, 1.0)  # exp(1) x stride: boxes ~5 strides wide at the start

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.tower(f)
        return self.cls_out(h).flatten(2), self.box_out(h).flatten(2)


class Head(nn.Module):
    """One LevelHead per level, not one shared over levels (as FCOS does): PT2E int8 export folds each BatchNorm
    into its conv once per *call*, so a conv + BN called at three levels would be folded three times (measured:
    scores off by up to 0.36 with every layer left float)."""

    def __init__(self, channels: int, num_classes: int, convs: int, levels: int):
        super().__init__()
        self.levels = nn.ModuleList(LevelHead(channels, num_classes, convs) for _ in range(levels))

    def forward(self, levels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [head(f) for head, f in zip(self.levels, levels)]
        return (torch.cat([o[0] for o in outs], 2).transpose(1, 2), torch.cat([o[1] for o in outs], 2).transpose(1, 2))


class BoxDecoder(nn.Module):
    """(class logits, box distances) at every location -> (xyxy boxes in input pixels, sigmoid scores). A module of
    its own so int8 export can keep it float (``Detector.float_modules``): box coordinates span hundreds of pixels
    and an int8 grid there costs whole pixels of IoU."""

    def __init__(self, input_size: int, strides: tuple[int, ...]):
        super().__init__()
        points, scale = [], []
        for s in strides:
            n = input_size // s
            ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
            points.append(torch.stack([(xs + 0.5) * s, (ys + 0.5) * s], -1).reshape(-1, 2))
            scale.append(torch.full((n * n, 1), float(s)))
        self.register_buffer("points", torch.cat(points).float(), persistent=False)  # (A, 2) location centres
        self.register_buffer("point_strides", torch.cat(scale), persistent=False)  # (A, 1)

    def forward(self, logits: torch.Tensor, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ltrb = torch.exp(dist.clamp(-6.0, 6.0)) * self.point_strides
        boxes = torch.cat([self.points - ltrb[..., :2], self.points + ltrb[..., 2:]], -1)
        return boxes, torch.sigmoid(logits)


class Detector(TransferModel):
    float_modules = ("decode",)  # box coordinates span hundreds of pixels: int8 export keeps the decoder float

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        input_size: int = 320,
        strides: tuple[int, ...] = (8, 16, 32),
        channels: int = 64,
        head_convs: int = 2,
    ):
        super().__init__()
        self.num_classes, self.input_size, self.strides = num_classes, input_size, tuple(strides)
        self.backbone_name = backbone.spec.name
        self.body, self.taps, feat_channels = _stride_outputs(backbone, input_size, self.strides)
        self.neck = FPNLite(feat_channels, channels)
        self.head = Head(channels, num_classes, head_convs, len(self.strides))
        self.decode = BoxDecoder(input_size, self.strides)

    @property
    def points(self) -> torch.Tensor:
        return self.decode.points

    @property
    def point_strides(self) -> torch.Tensor:
        return self.decode.point_strides

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone maps at ``self.strides`` (what stage 1 caches while the backbone is frozen)."""
        out = []
        for i, m in enumerate(self.body):
            x = m(x)
            if i in self.taps:
                out.append(x)
        return out  # taps ascend with the strides

    def forward_features(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits (B, A, C) and log box distances (B, A, 4) from backbone maps."""
        return self.head(self.neck(feats))

    def head_outputs(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and decoded xyxy boxes from backbone maps: what the losses take."""
        logits, dist = self.forward_features(feats)
        return logits, self.decode(logits, dist)[0]

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head_outputs(self.features(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The artifact's outputs: boxes (B, A, 4) xyxy in input pixels and scores (B, A, C)."""
        return self.decode(*self.forward_features(self.features(x)))

    def units(self) -> list[list[nn.Module]]:
        """The body's modules, input to output, one a unit: stage 2 unfreezes the last N."""
        return [[m] for m in self.body]

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.neck.parameters()) + list(self.head.parameters())
