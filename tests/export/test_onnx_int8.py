"""int8 quantization of a real ImageNet network (offline EfficientNet-Lite0) on real photos."""

import numpy as np
import pytest

from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds, meta_from_props
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
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=[str(i) for i in range(1000)],
        input_size=(224, 224),
        mean=spec.mean,
        std=spec.std,
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


def test_uint8_activations_and_7_bit_weights_are_built_and_recorded(fp32, tmp_path):
    import onnx
    from onnx import TensorProto, numpy_helper

    path, meta = fp32
    calib = calibration(photo_crops(224)[:4], "h")
    out = onnx_int8(path, ConvertSpec(tmp_path / "u.onnx", meta, "int8", calib, activations="uint8", weight_bits=7))
    proto = onnx.load(str(out))
    q = meta_from_props({p.key: p.value for p in proto.metadata_props}, "u.onnx").source["quantization"]
    assert (q["activations"], q["weights"]) == ("uint8", "int8 (7-bit range)")
    zero_points = {n.input[2] for n in proto.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}
    inits = {i.name: i for i in proto.graph.initializer}
    assert {inits[z].data_type for z in zero_points if z in inits} == {TensorProto.UINT8}  # activations
    weights = [numpy_helper.to_array(i) for i in proto.graph.initializer if i.data_type == TensorProto.INT8 and i.dims]
    assert weights and all(-64 <= w.min() and w.max() <= 64 for w in weights)  # 2 * 255 * 64 < 2**15: no saturation
    with pytest.raises(EdgecvError, match="weight_bits 7 or 8"):
        ConvertSpec(tmp_path / "x.onnx", meta, "int8", calib, weight_bits=4)


def test_layers_that_share_a_weight_each_get_their_own_and_load_on_the_exact_int8_path(tmp_path):
    import onnx
    import onnxruntime as ort

    from edgecv.runtime.backends.ort import KEEP_FLOAT_LAYERS_FLOAT, X64_EXACT_INT8
    from tests.export.onnx_layouts import hostile_classifier

    tied = hostile_classifier(tmp_path / "tied.onnx", hostile=0, layers=4)  # its four middle Gemms share one weight
    meta = ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=["red", "blue"],
        input_size=(32, 32),
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
    )
    rng = np.random.default_rng(0)
    colours = np.array([(40, 40, 200), (200, 40, 40)] * 4, np.float32)[:, None, None]  # BGR: red, blue, ...
    images = np.clip(colours + rng.normal(0, 25, (8, 32, 32, 3)), 0, 255).astype(np.uint8)
    out = onnx_int8(tied, ConvertSpec(tmp_path / "q.onnx", meta, "int8", calibration(images)))
    proto = onnx.load(str(out))
    weights = [n.input[0] for n in proto.graph.node if n.op_type == "DequantizeLinear" and "eye" in n.input[0]]
    assert len(weights) == len(set(weights)) == 4, weights  # one int8 weight a layer
    opts = ort.SessionOptions()
    opts.add_session_config_entry(*X64_EXACT_INT8)  # what the backend sets on x86 CPUs without VNNI
    cpu = ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(out), opts, providers=cpu, disabled_optimizers=KEEP_FLOAT_LAYERS_FLOAT)
    x = np.stack([prepare_input(im, meta) for im in images])
    got = np.concatenate([session.run(None, {"images": x[i : i + 1]})[0] for i in range(len(x))])
    want = np.concatenate([ort.InferenceSession(str(tied)).run(None, {"images": x[i : i + 1]})[0] for i in range(len(x))])
    assert (got.argmax(1) == want.argmax(1)).all() and set(want.argmax(1)) == {0, 1}, (got, want)  # both colours


def test_an_older_int8_file_with_shared_weights_is_refused_in_one_line_saying_what_to_do(tmp_path, monkeypatch):
    import edgecv.export.onnx_int8 as converter
    import edgecv.runtime.backends.ort as ort_backend
    from tests.export.onnx_layouts import hostile_classifier

    tied = hostile_classifier(tmp_path / "tied.onnx", hostile=0, layers=4)
    meta = ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=["red", "blue"],
        input_size=(32, 32),
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
    )
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    monkeypatch.setattr(converter, "untie_weights", lambda proto: 0)  # as edgecv quantized before
    old = onnx_int8(tied, ConvertSpec(tmp_path / "old.onnx", meta, "int8", calibration(images)))
    monkeypatch.setattr(ort_backend, "int8_saturates", lambda: True)  # a CPU without VNNI
    with pytest.raises(EdgecvError, match="old.onnx: onnxruntime cannot load it .its layers share a weight.*again"):
        create_backend(old)
