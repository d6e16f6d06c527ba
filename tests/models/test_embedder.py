"""The face embedder: GDC over the last feature map, unit outputs, and one name per module (the int8 gate keeps
layers float by the names the exported graph carries)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgecv.models import create_backbone, list_backbones
from edgecv.models.embedder import Embedder, feature_map_body


@pytest.fixture(scope="module", params=["gdc", "pool"])
def embedder(request):
    torch.manual_seed(0)
    return Embedder(create_backbone("efficientnet_lite0", pretrained="none"), dim=16, head=request.param, input_size=96).eval()


def test_feature_map_body_stops_before_global_pooling():
    bb = create_backbone("efficientnet_lite0", pretrained="none")
    body, channels, hw = feature_map_body(bb, 96)
    assert channels == bb.num_features and hw == (3, 3)  # 96 / 32
    assert body(torch.zeros(2, 3, 96, 96)).shape == (2, channels, 3, 3)


@pytest.mark.parametrize("name", list_backbones())
def test_body_is_the_backbones_own_forward_up_to_its_pooling(name):
    """The body is rebuilt from the backbone's units: run on through the units it left out, it must give the
    backbone's own pooled features (so the units are the whole forward, in order). torchvision's MobileNetV2
    pools in forward() itself, not in a module: its body is all of ``features``."""
    torch.manual_seed(0)
    bb = create_backbone(name, pretrained="none").eval()
    body, channels, hw = feature_map_body(bb, 64)
    rest = [m for group in bb.units() for m in group][len(body) :]
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        y = body(x)
        assert y.shape[1:] == (channels, *hw) and min(hw) > 1
        for m in rest:
            y = m(y)
        if y.dim() == 4:  # pooling done functionally by the model's forward
            y = y.mean((2, 3))
        torch.testing.assert_close(y.flatten(1), bb(x))


def test_unit_embeddings_and_gdc_weights_positions(embedder):
    x = torch.rand(3, 3, 96, 96)
    with torch.no_grad():
        y = embedder(x)
    assert y.shape == (3, 16)
    torch.testing.assert_close(y.norm(dim=1), torch.ones(3))
    if embedder.head.gdc is not None:
        conv = embedder.head.gdc[0]  # one 3x3 spatial weighting per channel
        assert conv.groups == conv.in_channels == embedder.backbone.num_features and conv.kernel_size == (3, 3)
        assert isinstance(embedder.head.bn_in, nn.Identity)


def test_every_module_has_one_name(embedder):
    everywhere = [name for name, _ in embedder.named_modules(remove_duplicate=False)]
    assert len(everywhere) == len(dict(embedder.named_modules()))
    assert all(not k.startswith("backbone.") for k in embedder.state_dict())
    # the stages still freeze and unfreeze through ``backbone``: the same parameters as ``body``
    body = {id(p) for p in embedder.body.parameters()}
    assert {id(p) for p in embedder.backbone.parameters()} <= body


def test_gate_names_reach_the_onnx_graph(embedder, tmp_path):
    onnx = pytest.importorskip("onnx")
    from edgecv.artifact import ArtifactMeta, EmbedDecoder, EmbedThresholds
    from edgecv.export.gate import quantized_layers
    from edgecv.export.onnx_int8 import nodes_for_modules
    from edgecv.export.spec import ConvertSpec
    from edgecv.export.torch2onnx import torch2onnx

    meta = ArtifactMeta(
        task="embed",
        labels=[],
        input_size=(96, 96),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        decoder=EmbedDecoder("embedding", ("embedding",), embedder.dim, True, "cosine", "test", "edgecv-chip"),
        thresholds=EmbedThresholds(target_far=1e-3, match=0.5, verify=0.5, track_gate=None, val_tar=None, val_far=None),
    )
    proto = onnx.load(str(torch2onnx(embedder, ConvertSpec(tmp_path / "e.onnx", meta))))
    layers = [name for name, m in embedder.named_modules() if isinstance(m, quantized_layers())]
    missing = [name for name in layers if not nodes_for_modules(proto, [name])]
    assert layers and not missing, missing
