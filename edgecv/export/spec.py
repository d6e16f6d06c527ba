"""What an export is asked to produce, validated against what each format can hold.

``ExportSpec`` is the user's request (the CLI's options); ``FORMATS`` is the capability table; an
impossible combination is an error naming the format and what it supports, never a silent change.
``ConvertSpec`` is what one converter gets: where to write, the metadata to embed, precision and data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgecv.artifact import ArtifactMeta
from edgecv.errors import EdgecvError
from edgecv.export.calibration import Calibration

# The int8 ONNX artifact's activations by default: unsigned, what onnxruntime's x86 int8 kernels take natively (VNNI's
# u8 x s8 product); signed ones ("int8", symmetric: zero point 0) are what TensorRT builds engines from, and take
# onnxruntime's slower signed-by-signed path on x86. benchmarks/export_latency.py --ort-kernels measures both.
ONNX_ACTIVATIONS = "uint8"
INT8_ACTIVATIONS = ("uint8", "int8")


@dataclass(frozen=True)
class FormatCaps:
    suffix: str
    precisions: tuple[str, ...]
    converters: dict[str, str]  # precision -> converter name
    note: str = ""


FORMATS: dict[str, FormatCaps] = {
    "onnx": FormatCaps(
        ".onnx",
        ("fp32", "int8"),
        {"fp32": "torch2onnx", "int8": "onnx_int8"},
        "fp16 ONNX is not built: CPU runtimes run it slower than fp32; use tflite or engine",
    ),
    "tflite": FormatCaps(
        ".tflite", ("fp32", "fp16", "int8"), {"fp32": "torch2tflite", "fp16": "torch2tflite", "int8": "torch2tflite"}
    ),
    "engine": FormatCaps(
        ".engine",
        ("fp32", "fp16", "int8"),
        {"fp32": "onnx2trt", "fp16": "onnx2trt", "int8": "onnx2trt"},
        "built on the target device with TensorRT",
    ),
}
CALIB_METHODS = ("minmax", "percentile", "entropy")


@dataclass(frozen=True)
class ExportSpec:
    formats: tuple[str, ...] = ("onnx", "tflite")
    int8: bool = False
    fp16: bool = False
    calib_images: int = 256
    calib_method: str = "minmax"
    max_drop: float = 1.0  # points of the task's metric an int8 artifact may lose against torch fp32
    out: Path | None = None
    threads: int | None = None  # for the fidelity measurements
    seed: int = 0
    nms_in_graph: bool = False  # detectors: also write each ONNX artifact with NonMaxSuppression appended
    int8_activations: str = ONNX_ACTIVATIONS  # the int8 ONNX's (engines are always built from signed ones)

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise EdgecvError(f"export: unknown format(s) {unknown}; known: {', '.join(FORMATS)}")
        for prec, asked in (("fp16", self.fp16), ("int8", self.int8)):
            if asked and not any(prec in FORMATS[f].precisions for f in self.formats):
                raise EdgecvError(
                    f"export: none of {', '.join(self.formats)} can hold {prec}; "
                    + "; ".join(f"{f} supports {', '.join(FORMATS[f].precisions)}" for f in self.formats)
                )
        if self.int8_activations not in INT8_ACTIVATIONS:
            raise EdgecvError(f"export: int8 activations {self.int8_activations!r} are not one of {', '.join(INT8_ACTIVATIONS)}")
        if self.calib_method not in CALIB_METHODS:
            raise EdgecvError(f"export: calibration method {self.calib_method!r} is not one of {', '.join(CALIB_METHODS)}")
        if self.int8 and self.calib_images < 1:
            raise EdgecvError("export: --int8 needs --calib-images >= 1")
        if self.max_drop < 0:
            raise EdgecvError("export: --max-drop must be >= 0 points")
        if self.nms_in_graph and "onnx" not in self.formats:
            raise EdgecvError("export: --nms-in-graph adds ONNX NonMaxSuppression; it needs --format onnx")

    def targets(self) -> list[tuple[str, str]]:
        """(format, precision) pairs, in build order. fp32 comes first wherever the format holds it: it is the
        reference every lower precision is measured against and the artifact kept if int8 fails its gate.
        --fp16 / --int8 apply to each format that can hold them (``skipped`` says which cannot, and why)."""
        out = []
        for fmt in sorted(self.formats, key=list(FORMATS).index):  # ONNX first: engines are built from it
            wanted = ["fp32"] + (["fp16"] if self.fp16 else []) + (["int8"] if self.int8 else [])
            if fmt == "engine" and (self.fp16 or self.int8):
                wanted.remove("fp32")
            out += [(fmt, p) for p in wanted if p in FORMATS[fmt].precisions]
        return out

    def skipped(self) -> list[str]:
        lines = []
        for fmt in self.formats:
            caps = FORMATS[fmt]
            for prec, asked in (("fp16", self.fp16), ("int8", self.int8)):
                if asked and prec not in caps.precisions:
                    lines.append(f"{fmt}: no {prec} artifact ({caps.note or 'not supported'})")
        return lines


@dataclass(frozen=True)
class ConvertSpec:
    out: Path
    meta: ArtifactMeta
    precision: str = "fp32"
    calibration: Calibration | None = None
    calib_method: str = "minmax"
    keep_float: tuple[str, ...] = field(default_factory=tuple)  # module paths left in float (mixed precision)
    # int8 ONNX only: the activations' type ("int8": signed and symmetric, what TensorRT builds engines from; "uint8":
    # what x86 int8 kernels take natively) and the weights' bits (7 leaves no 16-bit pair sum to saturate on x86
    # CPUs without VNNI). benchmarks/export_latency.py --ort-kernels measures each choice.
    activations: str = ONNX_ACTIVATIONS
    weight_bits: int = 8

    def __post_init__(self) -> None:
        if self.precision == "int8" and self.calibration is None:
            raise EdgecvError(f"{self.out}: int8 needs calibration data")
        if self.activations not in INT8_ACTIVATIONS or self.weight_bits not in (7, 8):
            raise EdgecvError(f"{self.out}: activations must be int8 or uint8 and weight_bits 7 or 8")

    def check_keep_float(self, missing: Sequence[str]) -> None:
        """Refuse ``keep_float`` names the converter found no graph nodes for: they would keep nothing float, and
        the int8 gate would retry in vain."""
        if missing:
            raise EdgecvError(f"{self.out}: no nodes belong to the module(s) to keep float: {', '.join(missing)}")
