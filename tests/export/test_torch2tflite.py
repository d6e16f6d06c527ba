"""torch -> TFLite fp32 / fp16 / int8 with litert-torch; the ReLU6 fusion; metadata inside the file."""

import numpy as np
import pytest
import torch
from torch import nn

from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
from edgecv.data.samples import photo_crops
from edgecv.export.spec import ConvertSpec
from edgecv.export.torch2tflite import torch2tflite
from edgecv.runtime.backends import create_backend
from edgecv.runtime.preprocess import prepare_input
from tests.export.test_onnx_int8 import calibration


class ReLU6Net(nn.Module):
    """Conv-BN-ReLU6 blocks like MobileNet / EfficientNet-Lite, small enough to convert in seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1),
            nn.BatchNorm2d(16),
            nn.ReLU6(),
            nn.Conv2d(16, 16, 3, 1, 1, groups=16),
            nn.BatchNorm2d(16),
            nn.ReLU6(),
            nn.Conv2d(16, 32, 1),
            nn.BatchNorm2d(32),
            nn.ReLU6(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(self.features(x))


META = ArtifactMeta(
    task="classify",
    decoder=ClassifyDecoder("logits", ("output",)),
    thresholds=ClassifyThresholds(),
    labels=list("abcd"),
    input_size=(48, 48),
    mean=(0.5,) * 3,
    std=(0.25,) * 3,
)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = ReLU6Net()
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def images():
    return photo_crops(48)


@pytest.mark.parametrize("precision, tol", [("fp32", 1e-4), ("fp16", 2e-2)])
def test_float_tflite_matches_torch_and_carries_nhwc_metadata(net, images, tmp_path, precision, tol):
    path = torch2tflite(net, ConvertSpec(tmp_path / f"m_{precision}.tflite", META, precision))
    backend = create_backend(path, threads=1)
    assert backend.meta.layout == "NHWC" and backend.meta.precision == precision and backend.meta.labels == list("abcd")
    x = np.stack([prepare_input(im, backend.meta) for im in images[:6]])
    with torch.no_grad():
        ref = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(backend.infer(x)[0], ref, atol=tol * max(1.0, np.abs(ref).max()))


def test_int8_tflite_takes_int8_input_and_agrees_with_torch(net, images, tmp_path):
    path = torch2tflite(net, ConvertSpec(tmp_path / "m_int8.tflite", META, "int8", calibration(images[::2], "cafe")))
    backend = create_backend(path, threads=1)
    meta = backend.meta
    assert meta.precision == "int8" and meta.calibration_hash == "cafe"
    detail = backend.interpreter.get_input_details()[0]
    assert detail["dtype"] == np.int8
    assert (meta.input_quant["scale"], meta.input_quant["zero_point"]) == pytest.approx(detail["quantization"])
    x = np.stack([prepare_input(im, meta) for im in images])
    assert x.dtype == np.int8
    y = backend.infer(x)[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(np.stack([prepare_input(im, META) for im in images]))).numpy()
    err = np.abs(y - ref).max() / np.abs(ref).max()
    assert err < 0.1, err


def _activation_observers(quantizer, net) -> int:
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from edgecv.export.torch2tflite import _nhwc

    program = prepare_pt2e(torch.export.export(_nhwc(net), (torch.zeros(1, 48, 48, 3),)).module(), quantizer)
    return sum("activation_post_process" in n.name for n in program.graph.nodes if n.op == "call_module")


def test_conv_relu6_is_quantized_once_after_the_clamp(net):
    """The stock quantizer observes each conv output before ReLU6 *and* shares it past the clamp; the
    fused pattern observes once, after the clamp: one observer fewer per conv+ReLU6 pair (3 here)."""
    from litert_torch.quantize import pt2e_quantizer as pq

    from edgecv.export._pt2e import EdgeQuantizer

    stock = pq.PT2EQuantizer().set_global(pq.get_symmetric_quantization_config(is_per_channel=True))
    assert _activation_observers(stock, net) - _activation_observers(EdgeQuantizer(), net) == 3


def test_keep_float_leaves_the_module_in_float(net, images, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    def fc_weight_dtypes(keep):
        path = torch2tflite(
            net, ConvertSpec(tmp_path / f"k{len(keep)}.tflite", META, "int8", calibration(images[:8]), keep_float=keep)
        )
        interp = Interpreter(str(path))
        ops = interp._get_ops_details()
        fc = [op for op in ops if op["op_name"] == "FULLY_CONNECTED"]
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
        return [tensors[op["inputs"][1]]["dtype"] for op in fc]

    assert fc_weight_dtypes(()) == [np.int8]
    assert fc_weight_dtypes(("head",)) == [np.float32]


def test_keep_float_names_the_graph_lacks_are_an_error(net, images, tmp_path):
    from edgecv.errors import EdgecvError

    with pytest.raises(EdgecvError, match="no nodes belong.*wrapped.backbone.head"):
        torch2tflite(
            net, ConvertSpec(tmp_path / "x.tflite", META, "int8", calibration(images[:8]), keep_float=("head", "backbone.head"))
        )
    assert not (tmp_path / "x.tflite").exists()
