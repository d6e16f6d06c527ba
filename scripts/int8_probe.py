"""Write the 274-byte ONNX model edgecv's onnxruntime backend runs once per process to learn whether this CPU's
int8 kernels saturate (edgecv/runtime/backends/ort.py embeds its bytes as INT8_PROBE). Needs `onnx`.

    python scripts/int8_probe.py   # prints the base64 of the model

QLinearMatMul of a = 64 x uint8 255 and b = 64 x int8 127, y_scale 10000: exactly 64 * 255 * 127 / 1e4 = 207.
VPMADDUBSW (x86 without VNNI) adds each pair of products into a saturating int16: 32 * 32767 / 1e4 = 105.
"""

import base64

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

K = 64
inits = [
    numpy_helper.from_array(np.array(1.0, np.float32), "a_s"),
    numpy_helper.from_array(np.array(0, np.uint8), "a_z"),
    numpy_helper.from_array(np.full((K, 1), 127, np.int8), "b"),
    numpy_helper.from_array(np.array(1.0, np.float32), "b_s"),
    numpy_helper.from_array(np.array(0, np.int8), "b_z"),
    numpy_helper.from_array(np.array(10000.0, np.float32), "y_s"),
    numpy_helper.from_array(np.array(0, np.uint8), "y_z"),
]
node = helper.make_node("QLinearMatMul", ["a", "a_s", "a_z", "b", "b_s", "b_z", "y_s", "y_z"], ["y"])
graph = helper.make_graph(
    [node],
    "probe",
    [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, K])],
    [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 1])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
print(base64.b64encode(model.SerializeToString()).decode())
