"""Write edgecv/runtime/postprocess/nms.onnx: one ONNX NonMaxSuppression node (one batch row per class; the rows'
padding is scored below score_threshold), run by onnxruntime's C++ kernel on the device (which has onnxruntime but
not the onnx package, hence a shipped file).
tests/runtime/test_nms.py checks the shipped file is exactly what this script builds.

    python scripts/make_nms_onnx.py
"""

from pathlib import Path

from onnx import TensorProto, helper

OUT = Path(__file__).resolve().parents[1] / "edgecv" / "runtime" / "postprocess" / "nms.onnx"


def build() -> bytes:
    inputs = ["boxes", "scores", "max_output_boxes_per_class", "iou_threshold", "score_threshold"]
    node = helper.make_node("NonMaxSuppression", inputs, ["selected"], center_point_box=0)
    graph = helper.make_graph(
        [node],
        "edgecv_nms",
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["rows", "n", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["rows", 1, "n"]),
            helper.make_tensor_value_info("max_output_boxes_per_class", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("iou_threshold", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("score_threshold", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, ["k", 3])],
    )
    # IR 9 / opset 18: loadable by every onnxruntime edgecv supports (1.16+)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9, producer_name="edgecv")
    return model.SerializeToString()


if __name__ == "__main__":
    OUT.write_bytes(build())
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
