"""int8 quantization of a real ImageNet network (offline EfficientNet-Lite0) on real photos."""

import numpy as np
import pytest

from edgecv.artifact import ArtifactMeta, meta_from_props
from edgecv.data.samples import photo_crops
from edgecv.errors import EdgecvError
from edgecv.export.calibration import Calibration
from edgecv.export.onnx_int8 import nodes_for_modules, onnx_int8
from edgecv.export.spec import ConvertSpec
from edgecv.export.torch2onnx import torch2onnx
from edgecv.models import get_spec
from edgecv.models.weights import load_imagenet_model
from edgecv.runtime.backends import create_backend
from edgecv.runtime.preprocess import prepare_input


def calibration(images: np.ndarray, tag: str = "calib123") -> Calibration:
    return Calibration(images, tuple(f"img{i}" for i in range(len(images))), tag)


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    spec = get_spec("efficientnet_lite0")
    model, _ = load_imagenet_model(spec)
    meta = ArtifactMeta(
        task="classify", labels=[str(i) for i in range(1000)], input_size=(224, 224), mean=spec.mean, std=spec.std
    )
    return torch2onnx(model.eval(), ConvertSpec(tmp_path_factory.mktemp("onnx") / "fp32.onnx", meta)), meta


def test_int8_keeps_imagenet_top1_and_describes_itself(fp32, tmp_path):
    import onnx
    import onnxruntime as ort

    path, meta = fp32
    images = photo_crops(224)
    # calibrate on half the crops, measure agreement on all
    out = onnx_int8(path, ConvertSpec(tmp_path / "int8.onnx", meta, "int8", calibration(images[::2])))
    proto = onnx.load(str(out))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    qmeta = meta_from_props({p.key: p.value for p in proto.metadata_props}, "int8.onnx")
    assert qmeta.precision == "int8" and qmeta.calibration_hash == "calib123"
    quant = qmeta.source["quantization"]
    assert quant["format"] == "QDQ" and quant["calibration_images"] == len(images[::2])
    x = np.stack([prepare_input(im, meta) for im in images])
    a = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    b = create_backend(out).infer(x)[0]  # as the runtime (and the export gate) runs it, on any x86 CPU
    agreement = float(np.mean(a.argmax(1) == b.argmax(1)))
    assert agreement >= 0.7, agreement  # measured on these 39 crops (1000-way ImageNet)


def test_keep_float_leaves_named_modules_unquantized(fp32, tmp_path):
    import onnx

    path, meta = fp32
    calib = calibration(photo_crops(224)[:4], "h")
    # Conv nodes carry their torch parameter names even after BatchNorm folding
    assert nodes_for_modules(onnx.load(str(path)), ["conv_stem"]) != []
    full = onnx_int8(path, ConvertSpec(tmp_path / "a.onnx", meta, "int8", calib))
    mixed = onnx_int8(path, ConvertSpec(tmp_path / "b.onnx", meta, "int8", calib, keep_float=("conv_stem", "blocks.0")))

    def n_quant(p):
        return sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(p)).graph.node)

    assert n_quant(mixed) < n_quant(full)
    q = meta_from_props({p.key: p.value for p in onnx.load(str(mixed)).metadata_props}, "b.onnx").source["quantization"]
    assert q["float_modules"] == ["conv_stem", "blocks.0"] and len(q["float_nodes"]) >= 3
    # a module the graph does not carry (e.g. a second name for a shared module) would keep nothing float
    with pytest.raises(EdgecvError, match="no nodes belong.*backbone.conv_stem"):
        onnx_int8(path, ConvertSpec(tmp_path / "c.onnx", meta, "int8", calib, keep_float=("conv_stem", "backbone.conv_stem")))
    assert not (tmp_path / "c.onnx").exists()
