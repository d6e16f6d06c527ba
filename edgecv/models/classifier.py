"""Image classifier = registry backbone + dropout + linear head. No training code here."""

from __future__ import annotations

import torch
from torch import nn

from edgecv.models._transfer import TransferModel
from edgecv.models.backbone import Backbone


class Classifier(TransferModel):
    def __init__(self, backbone: Backbone, num_classes: int, dropout: float = 0.2):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.num_features, num_classes)

    @property
    def body(self) -> Backbone:
        """The whole backbone: its pooled features are what the head sees (and stage 1 caches)."""
        return self.backbone

    def units(self) -> list[list[nn.Module]]:
        return self.backbone.units()

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.backbone(x))
