"""Face embedder = registry backbone + BN-dropout-FC-BN embedding head (ArcFace's "BN-Dropout-FC-BN"),
L2-normalised output. No training code here (the ArcFace/triplet losses live in ``train/embed_loss.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgecv.models._registry import Backbone


class L2Norm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1)


class EmbeddingHead(nn.Module):
    def __init__(self, in_features: int, dim: int = 128, dropout: float = 0.2):
        super().__init__()
        self.bn_in = nn.BatchNorm1d(in_features)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, dim)
        self.bn_out = nn.BatchNorm1d(dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.bn_out(self.fc(self.dropout(self.bn_in(features))))


class Embedder(nn.Module):
    """image -> (N, dim) unit vectors; cosine similarity = dot product."""

    def __init__(self, backbone: Backbone, dim: int = 128, dropout: float = 0.2):
        super().__init__()
        self.backbone = backbone
        self.head = EmbeddingHead(backbone.num_features, dim, dropout)
        self.norm = L2Norm()
        self.dim = dim

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Unnormalised embedding from pooled backbone features (what the losses see)."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.forward_head(self.backbone(x)))
