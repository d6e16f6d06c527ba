import platform
import subprocess
import sys

import numpy as np
import pytest

from edgecv.errors import EdgecvError
from edgecv.runtime.backends import create_backend, list_backends
from edgecv.runtime.backends._base import _REGISTRY, backend_for


def test_registry_maps_file_types_to_backends():
    assert list_backends() == ["litert", "onnxruntime", "tensorrt"]
    assert [backend_for(p) for p in ("a.onnx", "b.tflite", "c.engine")] == ["onnxruntime", "litert", "tensorrt"]
    for name in list_backends():
        assert _REGISTRY.get(name).suffixes


def test_unknown_or_missing_files_are_one_line_errors(tmp_path):
    with pytest.raises(EdgecvError, match="no such model file"):
        create_backend(tmp_path / "nope.onnx")
    (tmp_path / "m.pb").write_bytes(b"x")
    with pytest.raises(EdgecvError, match=r"no backend runs '.pb'"):
        create_backend(tmp_path / "m.pb")


def test_tflite_without_edgecv_metadata_is_refused(tmp_path):
    litert_torch = pytest.importorskip("litert_torch")
    import torch

    path = tmp_path / "plain.tflite"
    litert_torch.convert(torch.nn.Linear(3, 2).eval(), (torch.zeros(1, 3),)).export(str(path))
    with pytest.raises(EdgecvError, match="carries no edgecv metadata"):
        create_backend(path)


def test_engine_sidecar_must_match_the_engine(tmp_path):
    """The TensorRT backend reads its metadata from a sidecar keyed by the engine's hash (checked before
    TensorRT itself is needed, so this runs everywhere)."""
    from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
    from edgecv.artifact.tensorrt import read_engine_meta, sidecar_path, write_engine_sidecar

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"engine-bytes")
    meta = ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=["a", "b"],
        input_size=(8, 8),
        mean=(0,) * 3,
        std=(1,) * 3,
        precision="fp16",
    )
    write_engine_sidecar(engine, meta, sidecar_path(engine))
    assert read_engine_meta(engine) == meta
    engine.write_bytes(b"another engine")
    with pytest.raises(EdgecvError, match="describes a different engine"):
        read_engine_meta(engine)


def test_int8_input_quantization_rounds_and_saturates():
    from edgecv.runtime.preprocess import quantize_input

    x = np.array([-2.0, -0.26, 0.26, 0.149, 0.151, 5.0], np.float32)
    assert quantize_input(x, 0.1, 3).tolist() == [-17, 0, 6, 4, 5, 53]
    assert quantize_input(np.array([100.0, -100.0], np.float32), 0.1, 0).tolist() == [127, -128]


def _mixed_int8(tmp_path):
    """A small int8 net with one layer the gate kept float, and an input batch for it."""
    pytest.importorskip("onnx")
    import torch
    from torch import nn

    from edgecv.artifact import ArtifactMeta, EmbedDecoder, EmbedThresholds
    from edgecv.export.calibration import Calibration
    from edgecv.export.onnx_int8 import onnx_int8
    from edgecv.export.spec import ConvertSpec
    from edgecv.export.torch2onnx import torch2onnx

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, padding=1)
            self.dw = nn.Conv2d(16, 16, 8, groups=16)  # a GDC-like depthwise conv over the whole 8x8 map
            self.fc = nn.Linear(16, 8)

        def forward(self, x):
            return self.fc(self.dw(torch.relu(self.stem(x))).flatten(1))

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():  # per-channel weight scales 1000x apart (then evened out again, as a BatchNorm
        scales = torch.logspace(-3, 0, 16)  # would): one int8 scale for all of them loses the small channels
        net.dw.weight.mul_(scales[:, None, None, None])
        net.fc.weight.div_(scales[None, :])
    meta = ArtifactMeta(
        task="embed",
        labels=[],
        input_size=(8, 8),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        decoder=EmbedDecoder("embedding", ("embedding",), 8, False, "cosine", "test", "edgecv-chip"),
        thresholds=EmbedThresholds(target_far=1e-3, match=0.5, verify=0.5, track_gate=None, val_tar=None, val_far=None),
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
    fp32 = torch2onnx(net, ConvertSpec(tmp_path / "fp32.onnx", meta))
    mixed = onnx_int8(
        fp32,
        ConvertSpec(
            tmp_path / "mixed.onnx", meta, "int8", Calibration(images, tuple(map(str, range(16))), "c"), keep_float=("dw",)
        ),
    )
    return mixed, rng.standard_normal((4, 3, 8, 8)).astype(np.float32)


def _as_written(path, x):
    """The graph's own arithmetic: every node as written (DequantizeLinear, then float ops), no fused kernels."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_layers_kept_float_by_the_int8_gate_run_in_float(tmp_path):
    """onnxruntime would quantize, at load time, a float layer sitting between int8 neighbours (its
    WeightBiasQuantization transformer): the backend turns that off, so it runs the graph as written."""
    mixed, x = _mixed_int8(tmp_path)
    as_written = _as_written(mixed, x)
    ours = create_backend(mixed).infer(x)[0]
    np.testing.assert_allclose(ours, as_written, rtol=1e-3, atol=1e-3 * float(np.abs(as_written).max()))


@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulates an x86 CPU without VNNI: x86_64 hosts only")
def test_int8_is_exact_on_an_x86_cpu_without_vnni(tmp_path):
    """Without VNNI, onnxruntime's fast int8 kernels saturate 16-bit sums (CI ran on such a CPU: outputs off by
    29 of 38). The backend asks for the exact path; checked on a Haswell (AVX2, no VNNI) that qemu emulates."""
    mixed, x = _mixed_int8(tmp_path)
    np.save(tmp_path / "x.npy", x)
    child = (
        "import sys, numpy as np; from edgecv.runtime.backends import create_backend; "
        "d = sys.argv[1]; np.save(d + '/y.npy', create_backend(d + '/mixed.onnx').infer(np.load(d + '/x.npy'))[0])"
    )
    subprocess.run(
        ["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-c", child, str(tmp_path)],
        check=True,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )  # stderr: qemu lists the host features it lacks
    as_written = _as_written(mixed, x)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), as_written, rtol=1e-3, atol=1e-3 * float(np.abs(as_written).max()))


@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulates an x86 CPU without VNNI: x86_64 hosts only")
def test_the_exact_int8_path_is_asked_for_only_where_int8_saturates():
    """The exact path slows CPUs that have VNNI, so the backend probes onnxruntime once: saturation on the emulated
    Haswell, and natively what the CPU's flags say."""
    from edgecv.runtime.backends.ort import int8_saturates

    child = "from edgecv.runtime.backends.ort import int8_saturates; print(int8_saturates())"
    haswell = subprocess.run(
        ["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-c", child], capture_output=True, text=True, timeout=120
    )
    assert haswell.stdout.strip() == "True", haswell.stderr[-1000:]
    flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    assert int8_saturates() == (not {"avx512_vnni", "avx_vnni"} & set(flags))


def _fake_engine(tmp_path, monkeypatch, cudart):
    import json

    from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
    from edgecv.runtime.backends import tensorrt as trt_backend
    from tests.fake_tensorrt import fake_tensorrt

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"fake engine")
    meta = ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=["a", "b"],
        input_size=(4, 4),
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
    )
    trt_backend.sidecar_path(engine).write_text(
        json.dumps({"engine_sha256": trt_backend.file_sha256(engine), "meta": json.loads(meta.to_json())})
    )
    monkeypatch.setattr(trt_backend, "require", lambda *a, **k: fake_tensorrt())
    monkeypatch.setattr(trt_backend, "_cudart", lambda: cudart)
    return engine


def test_tensorrt_backend_returns_outputs_in_their_own_dtypes_and_frees_what_it_allocated(tmp_path, monkeypatch):
    from tests.fake_tensorrt import FakeCudart

    cudart = FakeCudart()
    backend = create_backend(_fake_engine(tmp_path, monkeypatch, cudart))
    assert backend.max_batch == 8  # the engine's profile: a multi-source run batches up to 8 streams
    from edgecv.runtime.inference import batch_size

    assert [batch_size(backend, 4), batch_size(backend, 12)] == [4, 8]  # on a GPU, a batch of the streams by default
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    scores, indices = backend.infer(x)
    assert scores.dtype == np.float32 and indices.dtype == np.int64  # fp16 widened; integers kept
    np.testing.assert_allclose(scores, np.stack([x.mean((1, 2, 3)), x.max((1, 2, 3))], 1), rtol=1e-3)
    assert indices.tolist() == [[0, 7, 2**40], [1, 7, 2**40 + 1]]  # as float32 these would not survive
    backend.infer(np.ones((5, 3, 4, 4), np.float32))  # a larger batch grows the buffers (old ones freed)
    assert len(cudart.mem) == 3 and len(cudart.streams) == 1
    with pytest.raises(EdgecvError, match="engine takes float32"):
        backend.infer(x.astype(np.float16))
    backend.close()
    assert cudart.mem == {} and cudart.streams == set()
    backend.close()  # twice is fine
    with pytest.raises(EdgecvError, match="closed"):
        backend.infer(x)
