"""Models: backbone registry with pretrained weights, and the task models built on it (no training code).

The built-in backbones register themselves when this package is imported (``backbones``), as timm's do."""

from edgecv.models import backbones  # noqa: F401  (registers the built-in backbones)
from edgecv.models._registry import BackboneSpec, get_spec, list_backbones, register_backbone
from edgecv.models._transfer import TransferModel
from edgecv.models.backbone import Backbone, create_backbone

__all__ = ["Backbone", "BackboneSpec", "TransferModel", "create_backbone", "get_spec", "list_backbones", "register_backbone"]
