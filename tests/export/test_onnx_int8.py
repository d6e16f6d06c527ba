"""int8 quantization of a real ImageNet network (offline EfficientNet-Lite0) on real photos."""

import numpy as np
import pytest

from edgecv.artifact import ArtifactMeta, meta_from_props
from edgecv.export.calibration import Calibration
from edgecv.export.onnx_int8 import nodes_for_modules, onnx_int8
from edgecv.export.spec import ConvertSpec
from edgecv.export.torch2onnx import torch2onnx
from edgecv.models import get_spec
from edgecv.models.weights import load_imagenet_model
from edgecv.runtime.preprocess import prepare_input

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
          "coins", "camera", "brick", "grass", "gravel", "page", "horse")


def photo_crops(size: int = 224) -> np.ndarray:
    """42 uint8 RGB crops (3 per scikit-image photo), resized to size x size."""
    import cv2
    from skimage import data

    crops = []
    for name in PHOTOS:
        im = np.asarray(getattr(data, name)())
        im = (np.repeat(im[..., None], 3, 2) if im.ndim == 2 else im[..., :3]).astype(np.uint8)
        h, w = im.shape[:2]
        s = min(h, w)
        for y, x, side in ((0, 0, s), (h - s // 2, w - s // 2, s // 2), (h // 4, w // 4, s // 2)):
            crops.append(cv2.resize(np.ascontiguousarray(im[y : y + side, x : x + side]), (size, size)))
    return np.stack(crops)


def calibration(images: np.ndarray, tag: str = "calib123") -> Calibration:
    return Calibration(images, tuple(f"img{i}" for i in range(len(images))), tag)


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    spec = get_spec("efficientnet_lite0")
    model, _ = load_imagenet_model(spec)
    meta = ArtifactMeta(task="classify", labels=[str(i) for i in range(1000)], input_size=(224, 224),
                        mean=spec.mean, std=spec.std)
    return torch2onnx(model.eval(), ConvertSpec(tmp_path_factory.mktemp("onnx") / "fp32.onnx", meta)), meta


def test_int8_keeps_imagenet_top1_and_describes_itself(fp32, tmp_path):
    import onnx
    import onnxruntime as ort

    path, meta = fp32
    images = photo_crops()
    # calibrate on half the crops, measure agreement on all
    out = onnx_int8(path, ConvertSpec(tmp_path / "int8.onnx", meta, "int8", calibration(images[::2])))
    proto = onnx.load(str(out))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    qmeta = meta_from_props({p.key: p.value for p in proto.metadata_props}, "int8.onnx")
    assert qmeta.precision == "int8" and qmeta.calibration_hash == "calib123"
    assert qmeta.source["quantization"]["format"] == "QDQ" and qmeta.source["quantization"]["calibration_images"] == 21
    x = np.stack([prepare_input(im, meta) for im in images])
    a = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    b = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    agreement = float(np.mean(a.argmax(1) == b.argmax(1)))
    assert agreement >= 0.7, agreement  # measured 0.83 on these 42 crops (1000-way ImageNet)


def test_keep_float_leaves_named_modules_unquantized(fp32, tmp_path):
    import onnx

    path, meta = fp32
    calib = calibration(photo_crops()[:4], "h")
    # Conv nodes carry their torch parameter names even after BatchNorm folding
    assert nodes_for_modules(onnx.load(str(path)), ["conv_stem"]) != []
    full = onnx_int8(path, ConvertSpec(tmp_path / "a.onnx", meta, "int8", calib))
    mixed = onnx_int8(path, ConvertSpec(tmp_path / "b.onnx", meta, "int8", calib, keep_float=("conv_stem", "blocks.0")))

    def n_quant(p):
        return sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(p)).graph.node)

    assert n_quant(mixed) < n_quant(full)
    q = meta_from_props({p.key: p.value for p in onnx.load(str(mixed)).metadata_props}, "b.onnx").source["quantization"]
    assert q["float_modules"] == ["conv_stem", "blocks.0"] and len(q["float_nodes"]) >= 3
