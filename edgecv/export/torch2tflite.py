"""torch -> TFLite with litert-torch (no tensorflow): fp32, fp16 (float16 weights via ai-edge-quantizer) and
full int8 (PT2E static quantization, int8 input and output). Graphs are NHWC (``to_channel_last_io``)
and batch 1, as LiteRT delegates expect; the metadata records layout and the input's scale/zero point.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from edgecv._deps import require
from edgecv.artifact.tflite import write_tflite_meta
from edgecv.errors import EdgecvError
from edgecv.export._atomic import atomic_output
from edgecv.export._registry import register_converter
from edgecv.export.spec import ConvertSpec

os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # litert-torch prints a progress tree per stage


def _nhwc(model: nn.Module) -> nn.Module:
    litert_torch = require("litert_torch", "export", "TFLite export")
    return litert_torch.to_channel_last_io(model.eval(), args=[0]).eval()


def _int8_program(wrapped: nn.Module, example: torch.Tensor, spec: ConvertSpec):
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgecv.export._pt2e import EdgeQuantizer

    quantizer = EdgeQuantizer(keep_float=[f"wrapped.{m}" for m in spec.keep_float])
    graph = torch.export.export(wrapped, (example,)).module()
    spec.check_keep_float(quantizer.unmatched(graph))
    program = move_exported_model_to_eval(prepare_pt2e(graph, quantizer))
    with torch.no_grad():
        for x in spec.calibration.inputs(dataclasses.replace(spec.meta, layout="NHWC"), desc=f"calibrating {spec.out.name}"):
            program(torch.from_numpy(x))
    program = move_exported_model_to_eval(convert_pt2e(program, fold_quantize=False))
    program.training = False  # move_exported_model_to_eval rewrites the ops but leaves the flag litert-torch checks
    return program, quantizer


def _input_quant(path: Path) -> dict[str, float] | None:
    interp = require("ai_edge_litert.interpreter", "export", "reading the converted model").Interpreter(str(path))
    detail = interp.get_input_details()[0]
    scale, zero = detail["quantization"]
    return {"scale": float(scale), "zero_point": int(zero)} if scale else None


def _fp16(fp32_path: Path, out: Path) -> None:
    aeq = require("ai_edge_quantizer", "export", "fp16 TFLite")
    from ai_edge_quantizer import recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    rm = recipe_manager.RecipeManager()
    rm.add_weight_only_config(
        regex=".*", operation_name=TFLOperationName.ALL_SUPPORTED, num_bits=16, algorithm_key=AlgorithmName.FLOAT_CASTING
    )
    qt = aeq.quantizer.Quantizer(str(fp32_path), rm.get_quantization_recipe())
    qt.quantize(enable_progress_report=False).export_model(str(out), overwrite=True)


@register_converter("torch2tflite", source="torch")
def torch2tflite(model: nn.Module, spec: ConvertSpec) -> Path:
    """Convert ``model`` (NCHW float input) to a batch-1 NHWC .tflite at ``spec.precision``."""
    litert_torch = require("litert_torch", "export", "TFLite export")
    if spec.precision not in ("fp32", "fp16", "int8"):
        raise EdgecvError(f"{spec.out}: torch2tflite cannot write {spec.precision}")
    h, w = spec.meta.input_size
    example = torch.zeros(1, h, w, 3)
    wrapped = _nhwc(model)
    meta = dataclasses.replace(spec.meta, layout="NHWC", precision=spec.precision)
    out = Path(spec.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".tflite.") as tmp:
        raw = Path(tmp) / "raw.tflite"
        if spec.precision == "int8":
            program, quantizer = _int8_program(wrapped, example, spec)
            from litert_torch.quantize.quant_config import QuantConfig

            litert_torch.convert(program, (example,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(raw))
            quant = {
                "method": "pt2e-histogram",
                "format": "TFLite int8",
                "per_channel": True,
                "weights": "int8",
                "activations": "int8",
                "float_modules": list(spec.keep_float),
                "calibration_images": len(spec.calibration),
            }
            meta = dataclasses.replace(
                meta,
                input_quant=_input_quant(raw),
                calibration_hash=spec.calibration.hash,
                source={**meta.source, "quantization": quant},
            )
        else:
            litert_torch.convert(wrapped, (example,)).export(str(raw))
            if spec.precision == "fp16":
                half = Path(tmp) / "fp16.tflite"
                _fp16(raw, half)
                raw = half
        with atomic_output(out) as final_tmp:
            write_tflite_meta(raw, final_tmp, meta)
    return out
