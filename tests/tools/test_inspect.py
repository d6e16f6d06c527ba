import json

import pytest
from click.testing import CliRunner

from edgecv.cli import cli
from edgecv.tools.inspect import inspect_onnx, inspect_torch


def test_mobilenet_v2_macs_match_the_published_300m_and_params_exactly():
    import torchvision

    r = inspect_torch(torchvision.models.mobilenet_v2(), (1, 3, 224, 224))
    assert r.params == 3_504_872  # torchvision's published count
    assert abs(r.macs - 300e6) / 300e6 < 0.05  # the paper's 300M multiply-adds
    kinds = r.macs_by_kind()
    assert kinds["pointwise"] > 10 * kinds["depthwise"] > 0  # depthwise-separable: the 1x1 convs carry the cost
    # the largest (input + output) pair: 112x112x96 expansion output after 112x112x16... in float32
    assert 4 < r.peak_inference_bytes() / 2**20 < 20


def test_onnx_and_torch_counts_agree_on_the_same_model(tiny_run, tiny_export):
    from edgecv.models.loading import load_classifier

    model, meta = load_classifier(tiny_run / "best.pt")
    t = inspect_torch(model, (1, 3, meta["input_size"], meta["input_size"]))
    o = inspect_onnx(tiny_export[0] / "model_fp32.onnx")
    q = inspect_onnx(tiny_export[0] / "model_int8.onnx")  # weights reach the convs through DequantizeLinear
    assert o.macs == pytest.approx(t.macs, rel=0.01) and q.macs == pytest.approx(t.macs, rel=0.01)
    assert o.macs_by_kind()["depthwise"] == pytest.approx(t.macs_by_kind()["depthwise"], rel=0.01)


def test_cli_prints_mb_for_a_backbone_and_json_for_onnx(tiny_export):
    r = CliRunner().invoke(cli, ["inspect", "mobilenetv2_100"])
    assert r.exit_code == 0, r.output
    assert "parameters: 3,504,872" in r.output and "MB" in r.output and "MACs: 300.8 M" in r.output
    r = CliRunner().invoke(cli, ["inspect", str(tiny_export[0] / "model_int8.onnx"), "--json"])
    data = json.loads(r.output)
    assert data["macs"] > 0 and data["peak_inference_activation_mb"] > 0
