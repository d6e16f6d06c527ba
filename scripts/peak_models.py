"""Write the two tiny ONNX models `edgecv bench` times to measure this machine's peak through onnxruntime (edgecv/
tools/roofline.py embeds their bytes as PEAK_MODELS): one dense GEMM in fp32 (MatMul) and one in int8 (MatMulInteger,
uint8 x int8 -> int32: onnxruntime's fast int8 kernels on x86 and ARM, VNNI / dot-product instructions). Both
matrices are inputs, so the files hold no weights (a few hundred bytes). Needs `onnx`.

    python scripts/peak_models.py   # prints a Python dict literal of their base64
"""

import base64

import onnx
from onnx import TensorProto, helper

M, K, N = 1024, 1024, 1024


def model(op: str, a: int, b: int, out: int) -> str:
    node = helper.make_node(op, ["a", "b"], ["y"])
    graph = helper.make_graph(
        [node],
        "peak",
        [helper.make_tensor_value_info("a", a, [M, K]), helper.make_tensor_value_info("b", b, [K, N])],
        [helper.make_tensor_value_info("y", out, [M, N])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return base64.b64encode(proto.SerializeToString()).decode()


print(
    {
        "fp32": model("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT),
        "int8": model("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32),
    }
)
