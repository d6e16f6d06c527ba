"""ONNX fp32 -> ONNX int8 (QDQ, per-channel int8 weights; activations uint8, what onnxruntime's x86 kernels take
natively and what export builds by default, or signed and symmetric, what TensorRT builds engines from) with
onnxruntime's static quantization. Calibration batches are the run's own train images, preprocessed as at inference; their
identity is stored in the artifact as ``calibration_hash``. ``spec.keep_float`` names torch modules whose
nodes stay float (mixed precision for sensitive layers).
"""

from __future__ import annotations

import ast
import dataclasses
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from edgecv._deps import require
from edgecv.artifact.onnx import set_onnx_meta
from edgecv.export._atomic import atomic_output
from edgecv.export._registry import register_converter
from edgecv.export.spec import ConvertSpec


def _reader(batches: Iterable[np.ndarray], input_name: str):
    q = require("onnxruntime.quantization", "export", "int8 quantization")

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: np.ascontiguousarray(x, dtype=np.float32)}

    return Reader()


def _module_of(node, initializers: set[str]) -> list[str]:
    """Torch module paths a node belongs to: the owner of its weight initializer (the dynamo exporter keeps
    parameter names, e.g. ``head.weight``, also after folding BatchNorm into a Conv), and its name scopes."""
    owners = [name.rsplit(".", 1)[0] for name in node.input[1:2] if name in initializers and "." in name]
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            owners += [s for s in ast.literal_eval(prop.value)[:-1] if s]
    return owners


def nodes_by_module(proto, modules: Sequence[str]) -> dict[str, list[str]]:
    """For each of ``modules``: the names of the graph's nodes that belong to it (or its submodules), in graph order.
    A name that is a node's own (an imported model has no torch modules: its gate keeps nodes) names that node."""
    inits = {t.name for t in proto.graph.initializer}
    found: dict[str, list[str]] = {m: [] for m in modules}
    for node in proto.graph.node:
        owners = _module_of(node, inits)
        for m in found:
            if node.name == m or any(o == m or o.startswith(m + ".") for o in owners):
                found[m].append(node.name)
    return found


def nodes_for_modules(proto, modules: Sequence[str], by_module: dict[str, list[str]] | None = None) -> list[str]:
    """Names of the graph's nodes that belong to any of ``modules`` (or their submodules), in graph order
    (``by_module``: ``nodes_by_module``'s answer when the caller already has it)."""
    by_module = nodes_by_module(proto, modules) if by_module is None else by_module
    wanted = {name for names in by_module.values() for name in names}
    return [node.name for node in proto.graph.node if node.name in wanted]


WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def untie_weights(proto) -> int:
    """Give each layer its own copy of a weight initializer that several layers share (tied weights, or an exporter
    that merged equal tensors), in place; returns the copies made. onnxruntime's exact int8 path for x86 CPUs without
    VNNI (``session.x64quantprecision``, which the backend sets there) rewrites each layer's int8 weights and fails
    to load a model whose layers share one ("Attempt to replace the existing tensor")."""
    onnx = require("onnx", "export", "int8 quantization")
    inits = {i.name: i for i in proto.graph.initializer}
    seen: set[str] = set()
    copies = 0
    for node in proto.graph.node:
        if node.op_type not in WEIGHTED_OPS or len(node.input) < 2 or node.input[1] not in inits:
            continue
        name = node.input[1]
        if name in seen:
            copies += 1
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[name])
            copy.name = f"{name}.untied{copies}"
            proto.graph.initializer.append(copy)
            node.input[1] = copy.name
        seen.add(name)
    return copies


def _quantize_static(q, pre: Path, qpath: Path, spec: ConvertSpec, input_name: str, float_nodes: list[str]) -> None:
    """onnxruntime's static QDQ quantization of ``pre`` into ``qpath``: per-channel int8 weights, ``spec``'s
    activations and calibration, ``float_nodes`` left float."""
    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "percentile": q.CalibrationMethod.Percentile,
        "entropy": q.CalibrationMethod.Entropy,
    }
    q.quantize_static(
        str(pre),
        str(qpath),
        _reader(spec.calibration.inputs(spec.meta, desc=f"calibrating {Path(spec.out).name}"), input_name),
        quant_format=q.QuantFormat.QDQ,
        per_channel=True,
        activation_type=q.QuantType.QUInt8 if spec.activations == "uint8" else q.QuantType.QInt8,
        weight_type=q.QuantType.QInt8,
        reduce_range=spec.weight_bits == 7,
        calibrate_method=methods[spec.calib_method],
        nodes_to_exclude=float_nodes,
        # a BatchNormalization that could not be folded (one after a pooling, ahead of a Linear) has 1-D weights:
        # one scale per channel (axis 0), not one for all of them; signed activations are symmetric (zero point 0),
        # what TensorRT builds int8 engines from
        extra_options={
            "QDQOpTypePerChannelSupportToAxis": {"BatchNormalization": 0},
            "ActivationSymmetric": spec.activations == "int8",
        },
    )


@register_converter("onnx_int8", source="onnx")
def onnx_int8(source: str | Path, spec: ConvertSpec) -> Path:
    """Quantize the fp32 ONNX ``source`` into ``spec.out`` (temp file + rename)."""
    onnx = require("onnx", "export", "int8 quantization")
    q = require("onnxruntime.quantization", "export", "int8 quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, out = Path(source), Path(spec.out)
    proto = onnx.load(str(source))
    meta = spec.meta
    by_module = nodes_by_module(proto, spec.keep_float)
    spec.check_keep_float([m for m, names in by_module.items() if not names])
    float_nodes = nodes_for_modules(proto, spec.keep_float, by_module)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".quant.") as tmp:
        if untie_weights(proto):
            onnx.save(proto, str(Path(tmp) / "untied.onnx"))
            source = Path(tmp) / "untied.onnx"
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        qpath = Path(tmp) / "int8.onnx"
        _quantize_static(q, pre, qpath, spec, proto.graph.input[0].name, float_nodes)
        qproto = onnx.load(str(qpath))
        quant = {
            "method": spec.calib_method,
            "format": "QDQ",
            "per_channel": True,
            "weights": "int8" if spec.weight_bits == 8 else "int8 (7-bit range)",
            "activations": spec.activations if spec.activations == "uint8" else "int8 (symmetric)",
            "float_modules": list(spec.keep_float),
            "float_nodes": float_nodes,
            "calibration_images": len(spec.calibration),
        }
        int8_meta = dataclasses.replace(
            meta, precision="int8", calibration_hash=spec.calibration.hash, source={**meta.source, "quantization": quant}
        )
        set_onnx_meta(qproto, int8_meta)
        onnx.checker.check_model(qproto)
        with atomic_output(out) as final_tmp:
            onnx.save(qproto, str(final_tmp))
    return out
