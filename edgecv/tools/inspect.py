"""``edgecv inspect``: parameters, MACs per layer (depthwise vs pointwise shown), peak activation memory for
inference (only two consecutive layers' activations need to be alive) and for training at batch B (every
activation is kept for backward, plus weights, gradients and AdamW's two moments).

Torch models are counted with ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2); ONNX graphs
from ONNX shape inference, node by node.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Layer:
    name: str
    kind: str  # conv, depthwise, pointwise, linear, other
    macs: int
    params: int
    out_shape: tuple[int, ...]
    act_bytes: int  # output activation at batch 1
    in_bytes: int


@dataclass
class Report:
    source: str
    params: int
    layers: list[Layer] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def macs_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in self.layers:
            out[layer.kind] = out.get(layer.kind, 0) + layer.macs
        return out

    def peak_inference_bytes(self) -> int:
        """Largest (input + output) of any layer: with layers run one after another, only those two are alive."""
        return max((layer.in_bytes + layer.act_bytes for layer in self.layers), default=0)

    def training_bytes(self, batch: int) -> int:
        """Upper estimate: every layer output kept for backward at ``batch``, plus weights, gradients and two AdamW
        moments (autograd keeps less where activations are in place)."""
        return batch * sum(layer.act_bytes for layer in self.layers) + 4 * 4 * self.params

    def to_dict(self, batch: int) -> dict[str, Any]:
        return {
            "source": self.source,
            "params": self.params,
            "macs": self.macs,
            "macs_by_kind": self.macs_by_kind(),
            "peak_inference_activation_mb": self.peak_inference_bytes() / 2**20,
            "training_mb_at_batch": {"batch": batch, "mb": self.training_bytes(batch) / 2**20},
            "layers": [layer.__dict__ for layer in self.layers],
        }


def _conv_kind(conv) -> str:
    if conv.groups > 1 and conv.groups == conv.in_channels:
        return "depthwise"
    if tuple(conv.kernel_size) == (1, 1) and conv.groups == 1:
        return "pointwise"
    return "conv"


def inspect_torch(model, input_shape: tuple[int, ...], source: str = "torch") -> Report:
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    leaves = {name: m for name, m in model.named_modules() if not list(m.children())}
    seen: list[tuple[str, int, tuple[int, ...], int]] = []

    def hook(name):
        def record(_m, args, out):
            t_in = sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))
            if isinstance(out, torch.Tensor):
                seen.append((name, t_in, tuple(out.shape), out.numel() * out.element_size()))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves.items()]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
    flops = counter.get_flop_counts()
    root = type(model).__name__
    report = Report(source, sum(p.numel() for p in model.parameters()))
    for name, in_bytes, shape, out_bytes in seen:
        m = leaves[name]
        key = f"{root}.{name}" if name else root
        macs = int(sum(flops.get(key, {}).values()) // 2)
        kind = _conv_kind(m) if isinstance(m, nn.Conv2d) else "linear" if isinstance(m, nn.Linear) else "other"
        report.layers.append(
            Layer(name, kind, macs, sum(p.numel() for p in m.parameters(recurse=False)), shape, out_bytes, in_bytes)
        )
    return report


def inspect_onnx(path: str | Path) -> Report:
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(path))
    for inp in model.graph.input:  # a dynamic batch is inspected at batch 1
        for dim in inp.type.tensor_type.shape.dim[:1]:
            if not dim.dim_value:
                dim.dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        dims = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
        shapes[vi.name] = dims
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    report = Report(str(path), int(sum(a.size for a in inits.values())))

    # int8 QDQ graphs feed weights through DequantizeLinear: follow it back to the quantized initializer
    wshape = {name: a.shape for name, a in inits.items()}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            wshape[node.output[0]] = inits[node.input[0]].shape

    def nbytes(name: str) -> int:
        return int(np.prod(shapes.get(name, (0,)))) * 4 if name in shapes else 0

    for node in model.graph.node:
        out = node.output[0]
        oshape = shapes.get(out, ())
        macs, kind = 0, "other"
        if node.op_type == "Conv" and node.input[1] in wshape:
            w = wshape[node.input[1]]
            groups = next((a.i for a in node.attribute if a.name == "group"), 1)
            cin = shapes.get(node.input[0], (0, 0))[1]
            macs = int(np.prod(oshape)) * int(np.prod(w[1:]))
            kind = (
                "depthwise" if groups > 1 and groups == cin else "pointwise" if tuple(w[2:]) == (1, 1) and groups == 1 else "conv"
            )
        elif node.op_type in ("Gemm", "MatMul"):
            w = wshape.get(node.input[1])
            k = (
                (w[0] if node.op_type == "MatMul" or not any(a.name == "transB" and a.i for a in node.attribute) else w[1])
                if w is not None
                else shapes.get(node.input[0], (0, 0))[-1]
            )
            macs, kind = int(np.prod(oshape)) * int(k), "linear"
        params = int(sum(inits[i].size for i in node.input if i in inits))
        in_bytes = sum(nbytes(i) for i in node.input if i not in inits)
        report.layers.append(Layer(node.name, kind, macs, params, oshape, nbytes(out), in_bytes))
    return report


def format_report(r: Report, batch: int, layers: bool = False) -> str:
    by = r.macs_by_kind()
    lines = [
        f"{r.source}",
        f"parameters: {r.params:,}",
        f"MACs: {r.macs / 1e6:.1f} M  ("
        + ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in sorted(by.items(), key=lambda kv: -kv[1]) if v)
        + ")",
        f"peak inference activation memory (two live layers): {r.peak_inference_bytes() / 2**20:.2f} MB",
        f"training memory at batch {batch} (activations + weights, grads, AdamW): {r.training_bytes(batch) / 2**20:.1f} MB",
    ]
    if layers:
        lines.append(f"{'layer':<48} {'kind':<10} {'MACs (M)':>9} {'params':>9} {'out':>18}")
        lines += [
            f"{layer.name[:48]:<48} {layer.kind:<10} {layer.macs / 1e6:>9.2f} {layer.params:>9} {str(layer.out_shape):>18}"
            for layer in r.layers
            if layer.macs or layer.params
        ]
    return "\n".join(lines)


_TFLITE_MACS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}


def inspect_tflite(path: str | Path) -> Report:
    """MACs per op of a .tflite model from LiteRT's own op and tensor tables (shapes as the interpreter allocates
    them); parameters are the constant tensors (inputs no op produces); activation bytes at their stored type."""
    from edgecv.runtime.backends.litert import _interpreter_class

    interp = _interpreter_class()(model_path=str(path))
    interp.allocate_tensors()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # noqa: SLF001 (LiteRT's only op listing)
    produced = {o for op in ops for o in op["outputs"]} | {d["index"] for d in interp.get_input_details()}

    def shape(i: int) -> tuple[int, ...]:
        return tuple(int(d) for d in tensors[i]["shape"]) if i in tensors else ()

    def nbytes(i: int) -> int:
        return int(np.prod(shape(i))) * np.dtype(tensors[i]["dtype"]).itemsize if i in tensors else 0

    consts = {i for op in ops for i in op["inputs"] if i >= 0 and i not in produced}
    report = Report(str(path), int(sum(np.prod(shape(i)) for i in consts)))
    for op in ops:
        name, ins, outs = op["op_name"], [i for i in op["inputs"] if i >= 0], op["outputs"]
        oshape, macs, kind = shape(outs[0]) if outs else (), 0, "other"
        if name in _TFLITE_MACS and len(ins) > 1:
            w = shape(ins[1])  # CONV_2D [cout, kh, kw, cin]; DEPTHWISE [1, kh, kw, cout]; FULLY_CONNECTED [out, in]
            if name == "DEPTHWISE_CONV_2D":
                macs, kind = int(np.prod(oshape)) * w[1] * w[2], "depthwise"
            elif name == "FULLY_CONNECTED":
                macs, kind = int(np.prod(oshape)) * w[-1], "linear"
            else:
                macs = int(np.prod(oshape)) * int(np.prod(w[1:]))
                kind = "pointwise" if name == "CONV_2D" and tuple(w[1:3]) == (1, 1) else "conv"
        params = int(sum(np.prod(shape(i)) for i in ins if i in consts))
        in_bytes = sum(nbytes(i) for i in ins if i not in consts)
        report.layers.append(Layer(f"{op['index']}:{name}", kind, macs, params, oshape, sum(nbytes(o) for o in outs), in_bytes))
    return report


def artifact_meta(path: str | Path):
    """The edgecv metadata an artifact carries (ONNX metadata props, the .tflite metadata entry, an engine's
    sidecar), read without loading a runtime session."""
    from edgecv.artifact import read_meta

    return read_meta(path)


def format_meta(meta) -> str:
    """The artifact's contract and its own fidelity row, in a few lines."""
    src = meta.source or {}
    lines = [
        f"artifact: {meta.task}, {len(meta.labels)} label(s) ({', '.join(meta.labels[:6])}"
        f"{', ...' if len(meta.labels) > 6 else ''}), input {meta.input_size[0]}x{meta.input_size[1]} "
        f"{meta.color} {meta.layout} ({meta.resize}), {meta.precision}",
        f"made by: edgecv {src.get('edgecv_version', '?')} "
        + (
            f"importing {src['imported']} (sha256 {src.get('sha256', '?')}, {src.get('producer') or src.get('format')}, "
            f"preset {src.get('preset', '?')}, decoder {meta.decoder.type})"
            if "imported" in src
            else f"from run {src.get('run', '?')} ({src.get('backbone', '?')}, recipe {src.get('recipe', '?')} "
            f"{src.get('recipe_hash', '')})"
        ),
    ]
    thresholds = dataclasses.asdict(meta.thresholds)
    if thresholds:
        lines.append(
            "thresholds: "
            + ", ".join(f"{k} {'not calibrated' if v is None else format(v, 'g')}" for k, v in sorted(thresholds.items()))
        )
    f = meta.fidelity
    if not f:
        lines.append("fidelity: none recorded (not measured by `edgecv export`)")
        return "\n".join(lines)
    ci = f.get("drop_ci95") or {}
    interval = f" [95% {ci['low']:+.2f}, {ci['high']:+.2f}]" if ci.get("high") is not None else ""
    agree_all = f.get("agreement_all") or {}
    gate = f.get("gate")
    lines.append(
        f"fidelity ({f['split']} split, n={f['n']}, {f['backend']}): {f['metric']} {f['value']:.4f} vs "
        f"fp32 {f['reference']:.4f}, drop {f['drop_points']:.2f} points{interval}, agreement "
        f"{f['top1_agreement']:.3f}" + (f" (all {agree_all['n']} run images: {agree_all['value']:.3f})" if agree_all else "")
    )
    if gate:
        lines.append(
            f"gate: {'pass' if gate['passed'] else 'FAIL'} at --max-drop {gate['max_drop']}, "
            f"{len(gate['float_layers'])} layer(s) kept in float"
        )
    return "\n".join(lines)
