"""Face embedder = registry backbone + embedding head, L2-normalised output. No training code here (the
ArcFace/triplet losses live in ``train/embed.py``).

Heads:
- ``gdc`` (default): MobileFaceNet's global depthwise conv over the backbone's last feature map (one learned
  spatial weighting per channel, so where a feature is in the face counts), then dropout-FC-BN as ArcFace's
  "E" output block. Global average pooling throws that layout away: on the README's generated people (90
  unseen test identities) pooling gave test TAR@FAR=1e-2 0.71 where GDC gives 0.83.
- ``pool``: the backbone's pooled features, then BN-dropout-FC-BN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgecv.models._transfer import TransferModel
from edgecv.models.backbone import Backbone

HEADS = ("gdc", "pool")


def feature_map_body(backbone: Backbone, size: int) -> tuple[nn.Sequential, int, tuple[int, int]]:
    """The backbone's modules up to its last spatial feature map (before global pooling), as one Sequential, with
    that map's channels and (h, w) at ``size`` x ``size`` input (found by a dry run)."""
    modules = [m for group in backbone.units() for m in group]
    x = torch.zeros(1, 3, size, size)
    kept: list[nn.Module] = []
    with torch.no_grad():
        was = backbone.training
        backbone.eval()
        for m in modules:
            y = m(x)
            if y.dim() != 4 or (y.shape[-2:] == (1, 1) and x.shape[-2:] != (1, 1)):
                break  # global pooling (or a flatten / classifier after it)
            kept.append(m)
            x = y
        backbone.train(was)
    if not kept or x.dim() != 4:
        raise ValueError(f"backbone {backbone.spec.name}: no spatial feature map found")
    return nn.Sequential(*kept), int(x.shape[1]), (int(x.shape[2]), int(x.shape[3]))


class L2Norm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1)


class EmbeddingHead(nn.Module):
    """[GDC: depthwise conv over the whole map + BN, flatten] or BN -> dropout -> FC -> BN."""

    def __init__(self, channels: int, dim: int = 128, dropout: float = 0.2, map_hw: tuple[int, int] | None = None):
        super().__init__()
        self.gdc = None
        if map_hw is not None:
            self.gdc = nn.Sequential(
                nn.Conv2d(channels, channels, map_hw, groups=channels, bias=False), nn.BatchNorm2d(channels), nn.Flatten()
            )
        # after GDC's own BatchNorm a second one over the same channels would be a redundant affine map
        self.bn_in = nn.BatchNorm1d(channels) if map_hw is None else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, dim)
        self.bn_out = nn.BatchNorm1d(dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.gdc is not None:
            features = self.gdc(features)
        return self.bn_out(self.fc(self.dropout(self.bn_in(features))))


class Embedder(TransferModel):
    """image -> (N, dim) unit vectors; cosine similarity = dot product. ``body`` is what stage 1 caches."""

    def __init__(self, backbone: Backbone, dim: int = 128, dropout: float = 0.2, head: str = "gdc", input_size: int = 112):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"embedder head {head!r} is not one of {HEADS}")
        # one name per module: ``body`` (what forward runs, so what the ONNX/TFLite graphs and the int8 gate's
        # keep-float names say); ``backbone`` is the same modules, for the stages' freeze/unfreeze by unit
        object.__setattr__(self, "backbone", backbone)
        if head == "gdc":
            self.body, channels, hw = feature_map_body(backbone, input_size)
        else:
            self.body, channels, hw = backbone, backbone.num_features, None
        self.head = EmbeddingHead(channels, dim, dropout, hw)
        self.norm = L2Norm()
        self.dim = dim

    def units(self) -> list[list[nn.Module]]:
        return self.backbone.units()

    def freeze_body(self) -> None:
        """The whole backbone (``body`` is its modules up to the last feature map: a head conv after the global
        pooling, as MobileNetV3 has, stays frozen too)."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Unnormalised embedding from ``body``'s output (what the losses see)."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.forward_head(self.body(x)))
