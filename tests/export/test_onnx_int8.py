"""int8 quantization of a real ImageNet network (offline EfficientNet-Lite0) on real photos."""

import numpy as np
import pytest

from edgecv.artifact import ArtifactMeta, meta_from_props
from edgecv.export.onnx_int8 import onnx_int8
from edgecv.export.torch2onnx import torch2onnx
from edgecv.models import get_spec
from edgecv.models.weights import load_imagenet_model
from edgecv.runtime.preprocess import classify_input_chw

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
          "coins", "camera", "brick", "grass", "gravel", "page", "horse")


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    spec = get_spec("efficientnet_lite0")
    model, _ = load_imagenet_model(spec)
    meta = ArtifactMeta(task="classify", labels=[str(i) for i in range(1000)], input_size=(224, 224),
                        mean=spec.mean, std=spec.std)
    return torch2onnx(model, meta, tmp_path_factory.mktemp("onnx") / "fp32.onnx"), spec


def photo_crops(spec) -> np.ndarray:
    from skimage import data

    crops = []
    for name in PHOTOS:
        im = np.asarray(getattr(data, name)())
        im = (np.repeat(im[..., None], 3, 2) if im.ndim == 2 else im[..., :3]).astype(np.uint8)
        h, w = im.shape[:2]
        s = min(h, w)
        for y, x, side in ((0, 0, s), (h - s // 2, w - s // 2, s // 2), (h // 4, w // 4, s // 2)):
            crops.append(classify_input_chw(im[y : y + side, x : x + side], 224, spec.mean, spec.std))
    return np.stack(crops)


def test_int8_keeps_imagenet_top1_and_describes_itself(fp32, tmp_path):
    import onnx
    import onnxruntime as ort

    path, spec = fp32
    x = photo_crops(spec)
    calib = x[::2]  # calibrate on half the crops, measure agreement on all
    out = onnx_int8(path, tmp_path / "int8.onnx", (calib[i : i + 1] for i in range(len(calib))), "calib123")
    proto = onnx.load(str(out))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    meta = meta_from_props({p.key: p.value for p in proto.metadata_props}, "int8.onnx")
    assert meta.precision == "int8" and meta.calibration_hash == "calib123"
    assert meta.source["quantization"]["format"] == "QDQ"
    a = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    b = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    agreement = float(np.mean(a.argmax(1) == b.argmax(1)))
    assert agreement >= 0.7, agreement  # measured 0.83 on these 42 crops (1000-way ImageNet)


def test_keep_float_leaves_named_nodes_unquantized(fp32, tmp_path):
    import onnx

    path, spec = fp32
    calib = photo_crops(spec)[:4]
    convs = [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    full = onnx_int8(path, tmp_path / "a.onnx", iter(calib[:, None]), "h")
    mixed = onnx_int8(path, tmp_path / "b.onnx", iter(calib[:, None]), "h", keep_float=convs[:5])

    def n_quant(p):
        return sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(p)).graph.node)

    assert n_quant(mixed) < n_quant(full)
    meta = meta_from_props({p.key: p.value for p in onnx.load(str(mixed)).metadata_props}, "b.onnx")
    assert meta.source["quantization"]["float_nodes"] == convs[:5]
