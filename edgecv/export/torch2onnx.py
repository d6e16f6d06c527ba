"""torch -> ONNX (opset 18, dynamo exporter, weights inside the file), checked, with edgecv metadata.

Written to a temp file and renamed: a failed export leaves any previous artifact intact.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edgecv._deps import require
from edgecv.artifact import META_KEY, ArtifactMeta
from edgecv.errors import EdgecvError
from edgecv.export._atomic import atomic_output

OPSET = 18


def torch2onnx(model: nn.Module, meta: ArtifactMeta, out: str | Path, max_batch: int = 64) -> Path:
    """Export ``model`` (NCHW float input named ``input``, dynamic batch) to ``out`` with ``meta`` inside."""
    onnx = require("onnx", "export", "ONNX export")
    require("onnxscript", "export", "torch.onnx's dynamo exporter")
    if meta.layout != "NCHW":
        raise EdgecvError("torch2onnx exports NCHW graphs; NHWC is a TFLite layout")
    out = Path(out)
    h, w = meta.input_size
    example = (torch.zeros(1, 3, h, w),)
    with atomic_output(out) as tmp:
        torch.onnx.export(model.eval(), example, str(tmp), opset_version=OPSET, external_data=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_shapes=({0: torch.export.Dim("batch", max=max_batch)},))
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, meta.to_json()
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return out
