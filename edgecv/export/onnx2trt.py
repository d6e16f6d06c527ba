"""ONNX -> TensorRT engine, built on the target device (fp32, fp16, or int8 from the QDQ ONNX: explicit
quantization with the calibration that made the QDQ model). Engines are cached under a key of the ONNX
file's hash + TensorRT version + GPU name, so an engine built for another GPU or TensorRT is never reused.
Needs ``tensorrt`` (JetPack, or NVIDIA's wheels) and an NVIDIA GPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from edgecv._deps import require
from edgecv.artifact import ArtifactMeta, read_meta
from edgecv.artifact.tensorrt import file_sha256, sidecar_path, write_engine_sidecar
from edgecv.errors import EdgecvError
from edgecv.export._atomic import atomic_output
from edgecv.export._registry import register_converter
from edgecv.export.spec import ConvertSpec
from edgecv.runtime.backends.tensorrt import TENSORRT_HOW, _check, _cudart

MAX_BATCH = 8


def engine_cache_dir() -> Path:
    return Path(os.environ.get("EDGECV_ENGINE_CACHE", Path.home() / ".cache" / "edgecv" / "engines"))


def engine_key(onnx_path: Path, precision: str, trt_version: str, gpu: str) -> str:
    text = f"{file_sha256(onnx_path)}|{precision}|{trt_version}|{gpu}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _gpu_name() -> str:
    props = _check(_cudart().cudaGetDeviceProperties(0))
    name = props.name
    return (name.decode() if isinstance(name, bytes) else str(name)).strip("\x00")


def trt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def strongly_typed_only(trt) -> bool:
    """TensorRT 11 removed the implicit-precision builder flags (and IInt8Calibrator): a network is strongly typed,
    its precision is the ONNX's own (Q/DQ nodes for int8, fp16 tensors for fp16). TensorRT 10 (JetPack 6) still
    takes FP16/INT8 flags over an fp32 or QDQ graph."""
    return trt_major(trt) >= 11 or not hasattr(trt.BuilderFlag, "INT8")


def fp16_onnx(onnx_path: Path, out: Path) -> Path:
    """The fp32 ONNX with fp16 weights and activations, float32 inputs and outputs kept (what a strongly typed
    fp16 engine is built from)."""
    onnx = require("onnx", "export", "reading the ONNX graph")
    float16 = require("onnxconverter_common.float16", "export", "building fp16 engines on TensorRT 11")
    model = float16.convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    onnx.save(model, str(out))
    return out


def _network(trt, builder, precision: str):
    """The network definition and builder config for ``precision`` on this TensorRT."""
    config = builder.create_builder_config()
    if strongly_typed_only(trt):
        flag = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        return builder.create_network(flag), config
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # explicit quantization: scales come from the QDQ nodes
    return builder.create_network(0), config


def _build(trt, onnx_path: Path, precision: str, input_size: tuple[int, int]) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, config = _network(trt, builder, precision)
    graph = onnx_path
    with tempfile.TemporaryDirectory() as tmp:
        if precision == "fp16" and strongly_typed_only(trt):
            graph = fp16_onnx(onnx_path, Path(tmp) / "fp16.onnx")
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(graph.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EdgecvError(f"{onnx_path}: TensorRT cannot parse it: {errors}")
    h, w = input_size
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    profile.set_shape(name, (1, 3, h, w), (1, 3, h, w), (MAX_BATCH, 3, h, w))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise EdgecvError(f"{onnx_path}: TensorRT could not build a {precision} engine (see its log above)")
    return bytes(engine)


def build_engine(source: Path, out: Path, meta: ArtifactMeta, precision: str, extra: dict | None = None) -> Path:
    """Build (or reuse from the cache) the ``precision`` engine of the ONNX ``source`` into ``out`` + its sidecar."""
    trt = require("tensorrt", "runtime", "building TensorRT engines", how=TENSORRT_HOW)
    onnx = require("onnx", "export", "reading the ONNX graph")
    ops = {n.op_type for n in onnx.load(str(source), load_external_data=False).graph.node}
    if precision == "int8" and "QuantizeLinear" not in ops:
        raise EdgecvError(f"{source}: an int8 engine is built from the QDQ int8 ONNX, not from an fp32 graph")
    gpu = _gpu_name()
    key = engine_key(source, precision, trt.__version__, gpu)
    cached = engine_cache_dir() / f"{key}.engine"
    if not cached.is_file():
        data = _build(trt, source, precision, meta.input_size)
        with atomic_output(cached) as tmp:
            tmp.write_bytes(data)
    with atomic_output(out) as tmp:
        shutil.copyfile(cached, tmp)
    write_engine_sidecar(
        out,
        dataclasses.replace(meta, precision=precision),
        sidecar_path(out),
        {"cache_key": key, "tensorrt": trt.__version__, "gpu": gpu, "onnx_sha256": file_sha256(source), **(extra or {})},
    )
    return out


@register_converter("onnx2trt", source="onnx")
def onnx2trt(source: str | Path, spec: ConvertSpec) -> Path:
    """The export path: the run's ONNX (fp32, or the gated QDQ int8) -> ``spec.out``; fidelity is measured after."""
    return build_engine(Path(source), Path(spec.out), spec.meta, spec.precision)


def engine_from_onnx(onnx_path: str | Path, out: str | Path | None = None, fp16: bool = False) -> Path:
    """On the device: an exported ONNX artifact -> its engine beside it (or ``out``). The precision follows the
    artifact (an int8 ONNX gives an int8 engine from its QDQ scales; fp32 gives fp32, or fp16 with ``fp16``); the
    metadata, including the ONNX's fidelity rows, goes into the sidecar, marked as measured on the ONNX."""
    onnx_path = Path(onnx_path)
    meta = read_meta(onnx_path)
    if (meta.source or {}).get("quantization", {}).get("activations") == "uint8":
        raise EdgecvError(
            f"{onnx_path}: its int8 activations are uint8 (made for onnxruntime on CPUs); TensorRT builds engines from "
            "signed, symmetric ones: export it with `--int8-activations int8` (or a Jetson's --device profile)"
        )
    precision = "int8" if meta.precision == "int8" else ("fp16" if fp16 else "fp32")
    out = Path(out) if out else onnx_path.with_name(f"{onnx_path.stem}{'_fp16' if fp16 else ''}.engine")
    return build_engine(onnx_path, out, meta, precision, {"fidelity_measured_on": onnx_path.name})
