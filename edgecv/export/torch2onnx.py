"""torch -> ONNX (opset 18, dynamo exporter, weights inside the file), checked, with edgecv metadata.

Written to a temp file and renamed: a failed export leaves any previous artifact intact.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edgecv._deps import require
from edgecv.artifact.onnx import set_onnx_meta
from edgecv.errors import EdgecvError
from edgecv.export._atomic import atomic_output
from edgecv.export._registry import register_converter
from edgecv.export.spec import ConvertSpec

OPSET = 18
MAX_BATCH = 64


@register_converter("torch2onnx", source="torch")
def torch2onnx(model: nn.Module, spec: ConvertSpec) -> Path:
    """Export ``model`` (NCHW float input named ``input``, dynamic batch) to ``spec.out`` with ``spec.meta`` inside."""
    onnx = require("onnx", "export", "ONNX export")
    require("onnxscript", "export", "torch.onnx's dynamo exporter")
    meta = spec.meta
    if meta.layout != "NCHW" or spec.precision != "fp32":
        raise EdgecvError(f"{spec.out}: torch2onnx writes fp32 NCHW graphs (int8 comes from onnx_int8)")
    h, w = meta.input_size
    example = (torch.zeros(1, 3, h, w),)
    outputs = list(meta.decoder.outputs)  # a detector: boxes, scores
    with atomic_output(Path(spec.out)) as tmp:
        torch.onnx.export(
            model.eval(),
            example,
            str(tmp),
            opset_version=OPSET,
            external_data=False,
            input_names=["input"],
            output_names=outputs,
            verbose=False,
            dynamic_shapes=({0: torch.export.Dim("batch", max=MAX_BATCH)},),
        )
        proto = onnx.load(str(tmp))
        set_onnx_meta(proto, meta)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return Path(spec.out)
