"""Models: backbone registry with pretrained weights, and the task models built on it (no training code)."""

from edgecv.models._registry import BackboneSpec, create_backbone, get_spec, list_backbones, register_backbone

__all__ = ["BackboneSpec", "create_backbone", "get_spec", "list_backbones", "register_backbone"]
