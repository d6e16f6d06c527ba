"""Import every converter module so each registers itself (import cost stays inside each converter)."""

from edgecv.export import onnx2trt, onnx_int8, onnx_nms, torch2onnx, torch2tflite  # noqa: F401
