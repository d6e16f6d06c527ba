"""ONNX fp32 -> ONNX int8 (QDQ, per-channel weights) with onnxruntime's static quantization.

Calibration batches come from the caller (the run's own train split, preprocessed exactly as at
inference); their identity is stored in the artifact as ``calibration_hash``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from edgecv._deps import require
from edgecv.artifact import META_KEY, meta_from_props
from edgecv.export._atomic import atomic_output


def _reader(batches: Iterable[np.ndarray], input_name: str):
    q = require("onnxruntime.quantization", "export", "int8 quantization")

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: np.ascontiguousarray(x, dtype=np.float32)}

    return Reader()


def onnx_int8(source: str | Path, out: str | Path, calibration: Iterable[np.ndarray], calibration_hash: str,
              method: str = "minmax", keep_float: Sequence[str] = ()) -> Path:
    """Quantize ``source`` into ``out`` (temp file + rename). ``keep_float`` names nodes left in float
    (mixed precision for sensitive layers)."""
    onnx = require("onnx", "export", "int8 quantization")
    q = require("onnxruntime.quantization", "export", "int8 quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
               "entropy": q.CalibrationMethod.Entropy}
    source, out = Path(source), Path(out)
    proto = onnx.load(str(source))
    props = {p.key: p.value for p in proto.metadata_props}
    meta = meta_from_props(props, str(source))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        qpath = Path(tmp) / "int8.onnx"
        q.quantize_static(str(pre), str(qpath), _reader(calibration, proto.graph.input[0].name),
                          quant_format=q.QuantFormat.QDQ, per_channel=True, activation_type=q.QuantType.QInt8,
                          weight_type=q.QuantType.QInt8, calibrate_method=methods[method],
                          nodes_to_exclude=list(keep_float))
        qproto = onnx.load(str(qpath))
        del qproto.metadata_props[:]
        int8_meta = dataclasses.replace(meta, precision="int8", calibration_hash=calibration_hash,
                                        source={**meta.source, "quantization": {"method": method, "format": "QDQ",
                                                                              "per_channel": True,
                                                                              "float_nodes": list(keep_float)}})
        entry = qproto.metadata_props.add()
        entry.key, entry.value = META_KEY, int8_meta.to_json()
        onnx.checker.check_model(qproto)
        with atomic_output(out) as final_tmp:
            onnx.save(qproto, str(final_tmp))
    return out
