"""Reading a model edgecv did not train, before its import: its format, input layout and size, precision and the
metadata its exporter left in it (an Ultralytics export's class names and image size)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecv._deps import require
from edgecv.artifact import META_KEY
from edgecv.errors import EdgecvError


@dataclass(frozen=True)
class Probe:
    fmt: str  # onnx | tflite
    layout: str  # NCHW | NHWC
    size: tuple[int | None, int | None]
    precision: str
    input_quant: dict[str, float] | None
    extra: dict[str, str]  # the model's own metadata (an Ultralytics export's names, imgsz, task, end2end)
    producer: str


def probe_onnx(path: Path) -> Probe:
    onnx = require("onnx", "import", "edgecv import")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001  (onnx raises DecodeError and friends: all say "not a model")
        raise EdgecvError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    inits = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EdgecvError(f"{path}: has {len(inputs)} inputs; edgecv runs models with one image input")
    t = inputs[0].type.tensor_type
    if t.elem_type != onnx.TensorProto.FLOAT:
        raise EdgecvError(
            f"{path}: input {inputs[0].name!r} is {onnx.TensorProto.DataType.Name(t.elem_type)}, "
            "not FLOAT; export the model with a float32 input"
        )
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    layout, hw = _image_layout(path, dims)
    props = {p.key: p.value for p in proto.metadata_props}
    if META_KEY in props:
        raise EdgecvError(f"{path}: is an edgecv artifact already (see `edgecv inspect`)")
    quantized = any(n.op_type in ("QuantizeLinear", "QLinearConv", "ConvInteger") for n in proto.graph.node)
    return Probe(
        "onnx",
        layout,
        hw,
        "int8" if quantized else "fp32",
        None,
        props,
        f"{proto.producer_name} {proto.producer_version}".strip(),
    )


def probe_tflite(path: Path) -> Probe:
    from edgecv.artifact.tflite import read_tflite_meta
    from edgecv.runtime.backends.litert import _interpreter_class

    try:
        read_tflite_meta(path)
    except EdgecvError:
        pass  # no edgecv metadata (or not a flatbuffer: LiteRT says so below)
    else:
        raise EdgecvError(f"{path}: is an edgecv artifact already (see `edgecv inspect`)")
    try:
        interp = _interpreter_class()(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise EdgecvError(f"{path}: LiteRT cannot load it ({str(exc).splitlines()[0]})") from None
    details = interp.get_input_details()
    if len(details) != 1:
        raise EdgecvError(f"{path}: has {len(details)} inputs; edgecv runs models with one image input")
    d = details[0]
    layout, hw = _image_layout(path, [int(v) if v > 0 else None for v in d.get("shape_signature", d["shape"])])
    dtype = np.dtype(d["dtype"])
    if dtype == np.int8:
        scale, zero = d["quantization"]
        return Probe("tflite", layout, hw, "int8", {"scale": float(scale), "zero_point": int(zero)}, {}, "tflite")
    if dtype != np.float32:
        raise EdgecvError(f"{path}: input is {dtype}; edgecv runs float32 or int8 inputs (convert it with int8 I/O)")
    ops = {np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
    return Probe("tflite", layout, hw, "int8" if np.dtype(np.int8) in ops else "fp32", None, {}, "tflite")


def _image_layout(path: Path, dims: list[int | None]) -> tuple[str, tuple[int | None, int | None]]:
    if len(dims) != 4:
        raise EdgecvError(f"{path}: input has {len(dims)} dimensions; an image model takes 4 (batch, 3 channels, H, W)")
    if dims[1] == 3:
        return "NCHW", (dims[2], dims[3])
    if dims[3] == 3:
        return "NHWC", (dims[1], dims[2])
    raise EdgecvError(f"{path}: input shape {dims} has no 3-channel axis (NCHW or NHWC)")


def model_names(extra: dict[str, str]) -> list[str] | None:
    """Class names an Ultralytics export stores (``names``: a dict literal, class id -> name)."""
    if "names" not in extra:
        return None
    try:
        names = ast.literal_eval(extra["names"])
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        return [str(names[i]) for i in range(len(names))]
    return [str(n) for n in names] if isinstance(names, list) else None
