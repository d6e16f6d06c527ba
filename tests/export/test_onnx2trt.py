"""TensorRT engines: built and run only where `tensorrt` and an NVIDIA GPU exist; skipped here with a reason."""

import importlib.util

import numpy as np
import pytest

from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
from edgecv.export.onnx2trt import engine_key
from edgecv.export.spec import ConvertSpec

needs_trt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None, reason="tensorrt is not installed (no NVIDIA GPU on this machine)"
)


def test_engine_cache_key_changes_with_model_precision_tensorrt_and_gpu(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"model a")
    b.write_bytes(b"model b")
    base = engine_key(a, "fp16", "10.3.0", "Orin")
    others = [
        engine_key(b, "fp16", "10.3.0", "Orin"),
        engine_key(a, "int8", "10.3.0", "Orin"),
        engine_key(a, "fp16", "10.4.0", "Orin"),
        engine_key(a, "fp16", "10.3.0", "H100"),
    ]
    assert base == engine_key(a, "fp16", "10.3.0", "Orin") and base not in others and len(set(others)) == 4


@needs_trt
def test_fp16_engine_matches_onnx(tmp_path, monkeypatch):
    import torch

    from edgecv.export.onnx2trt import onnx2trt
    from edgecv.export.torch2onnx import torch2onnx
    from edgecv.runtime.backends import create_backend

    monkeypatch.setenv("EDGECV_ENGINE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3)
    ).eval()
    meta = ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=list("abc"),
        input_size=(32, 32),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
    )
    onnx_path = torch2onnx(net, ConvertSpec(tmp_path / "m.onnx", meta))
    engine = onnx2trt(onnx_path, ConvertSpec(tmp_path / "m.engine", meta, "fp16"))
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = create_backend(engine).infer(x)[0]
    ref = create_backend(onnx_path).infer(x)[0]
    np.testing.assert_allclose(y, ref, atol=1e-2)
    assert len(list((tmp_path / "cache").glob("*.engine"))) == 1


def _signed_int8(out, tmp_path):
    """The tiny export's fp32 ONNX quantized with signed, symmetric activations (what a Jetson profile exports)."""
    from edgecv.artifact import read_meta
    from edgecv.export.calibration import Calibration
    from edgecv.export.onnx_int8 import onnx_int8
    from edgecv.export.spec import ConvertSpec

    meta = read_meta(out / "model_fp32.onnx")
    h, w = meta.input_size
    images = np.random.default_rng(0).integers(0, 256, (4, h, w, 3), dtype=np.uint8)
    cal = Calibration(images, ("a", "b", "c", "d"), "random")
    return onnx_int8(out / "model_fp32.onnx", ConvertSpec(tmp_path / "signed.onnx", meta, "int8", cal, activations="int8"))


def test_an_onnx_for_onnxruntime_is_refused_by_the_engine_builder_in_one_line(tiny_export, tmp_path):
    """The default int8 ONNX has uint8 activations (onnxruntime's fast x86 kernels); TensorRT needs signed, symmetric
    Q/DQ: `edgecv engine` says so before anything is built, and a signed export has zero points of 0."""
    import onnx
    from onnx import numpy_helper

    from edgecv.errors import EdgecvError
    from edgecv.export.onnx2trt import engine_from_onnx

    out, _ = tiny_export
    with pytest.raises(EdgecvError, match="activations are uint8 .*--int8-activations int8"):
        engine_from_onnx(out / "model_int8.onnx", out=tmp_path / "m.engine")
    assert not (tmp_path / "m.engine").exists()
    graph = onnx.load(str(_signed_int8(out, tmp_path))).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    zero_points = [inits[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)


@needs_trt
def test_engine_from_an_int8_onnx_artifact_is_int8_and_carries_its_metadata(tiny_export, tmp_path, monkeypatch):
    from edgecv.export.onnx2trt import engine_from_onnx
    from edgecv.runtime.backends.tensorrt import read_engine_meta

    monkeypatch.setenv("EDGECV_ENGINE_CACHE", str(tmp_path / "cache"))
    out, _ = tiny_export
    engine = engine_from_onnx(_signed_int8(out, tmp_path), out=tmp_path / "m.engine")
    meta = read_engine_meta(engine)
    assert meta.precision == "int8" and meta.labels


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_engine_command_without_tensorrt_says_where_it_comes_from(tiny_export):
    from click.testing import CliRunner

    from edgecv.cli import cli

    out, _ = tiny_export
    r = CliRunner().invoke(cli, ["engine", str(out / "model_fp32.onnx")])
    assert r.exit_code == 2
    assert "tensorrt is needed for building TensorRT engines" in r.output and "JetPack" in r.output
    assert not list(out.glob("*.engine"))  # nothing half-written


def _tiny_onnx(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


@pytest.mark.parametrize(
    "version,precision,flags,typed",
    [
        ("10.3.0", "fp32", [], False),
        ("10.3.0", "fp16", ["FP16"], False),
        ("10.3.0", "int8", ["FP16", "INT8"], False),
        ("11.0.0", "fp32", [], True),
        ("11.0.0", "int8", [], True),
        ("11.0.0", "fp16", [], True),
    ],
)
def test_engine_build_takes_the_path_each_tensorrt_supports(tmp_path, version, precision, flags, typed):
    """TensorRT 10 (JetPack 6): precision builder flags over the fp32 or QDQ graph. TensorRT 11: no implicit
    precision, a strongly typed network whose precision is the ONNX's own: QDQ for int8, and for fp16 an fp16 copy
    of the graph (float32 inputs and outputs kept)."""
    import onnx

    from edgecv.export.onnx2trt import _build
    from tests.fake_tensorrt import fake_tensorrt

    source = _tiny_onnx(tmp_path / "m.onnx")
    trt = fake_tensorrt(version)
    assert _build(trt, source, precision, (8, 8)) == b"fake engine"
    assert [c[1] for c in trt.calls if c[0] == "flag"] == flags
    network_flags = [c[1] for c in trt.calls if c[0] == "network"]
    assert network_flags == [1 << 5 if typed else 0]
    parsed = onnx.load_from_string([c[1] for c in trt.calls if c[0] == "parse"][0])
    weight_type = parsed.graph.initializer[0].data_type
    if typed and precision == "fp16":
        assert weight_type == onnx.TensorProto.FLOAT16
        assert parsed.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    else:
        assert parsed.SerializeToString() == source.read_bytes() and weight_type == onnx.TensorProto.FLOAT
    assert [c[1] for c in trt.calls if c[0] == "profile"] == [((1, 3, 8, 8), (1, 3, 8, 8), (8, 3, 8, 8))]
