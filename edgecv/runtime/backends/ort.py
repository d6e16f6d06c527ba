"""onnxruntime backend: CPU by default; CUDA / TensorRT execution providers when asked for and present."""

from __future__ import annotations

import base64
import functools
import logging
import platform
from pathlib import Path

import numpy as np

from edgecv._deps import require
from edgecv.artifact import meta_from_props
from edgecv.errors import EdgecvError
from edgecv.runtime.backends._base import Backend, register_backend

log = logging.getLogger(__name__)

# onnxruntime (1.31 here) quantizes at load time the float weights of a layer that sits between a
# DequantizeLinear and a QuantizeLinear: exactly the layers the int8 gate keeps float, and per tensor (a
# depthwise GDC conv kept float came out at cosine 0.66 to fp32 instead of 0.94). Unknown names are ignored by
# onnxruntime builds that lack this transformer.
KEEP_FLOAT_LAYERS_FLOAT = ["WeightBiasQuantization"]

# On x86 CPUs without VNNI (AVX2, or AVX-512 before Cascade Lake; many mini PCs and older Xeons), onnxruntime's
# int8 kernels multiply with VPMADDUBSW, whose 16-bit pair sums saturate: the same int8 EfficientNet-Lite0 agreed
# with fp32 on 87% of ImageNet crops with VNNI and on 62% without, and a small int8 net's outputs were off by up to
# 29 of 38 (both under `qemu-x86_64 -cpu Haswell`). This option takes the exact path; it also slows CPUs that have
# VNNI (the sample's int8 Lite0 at 160 px: 6.4 -> 9.5 ms on one thread here), so it is set only where the probe
# below shows saturation.
X64_EXACT_INT8 = ("session.x64quantprecision", "1")
# scripts/int8_probe.py: QLinearMatMul whose exact answer is 207 and whose VPMADDUBSW answer is 105.
INT8_PROBE = base64.b64decode(
    "CAg6hwIKNgoBYQoDYV9zCgNhX3oKAWIKA2JfcwoDYl96CgN5X3MKA3lfehIBeSINUUxpbmVhck1hdE11bBIFcHJvYmUqDRABQgNhX3NKBAAAgD8qChACQgNhX3pKAQAqSwhACAEQA0IBYkpAf39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/fyoNEAFCA2Jfc0oEAACAPyoKEANCA2JfekoBACoNEAFCA3lfc0oEAEAcRioKEAJCA3lfekoBAFoTCgFhEg4KDAgCEggKAggBCgIIQGITCgF5Eg4KDAgCEggKAggBCgIIAUIECgAQDQ=="
)


@functools.cache
def int8_saturates() -> bool:
    """Whether this CPU's default onnxruntime int8 kernels saturate (asked of onnxruntime itself, once a process:
    it picks its kernels by CPUID, which is what emulators and VMs report too)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "x86", "i686", "i386"):
        return False
    ort = require("onnxruntime", "runtime", "running ONNX models")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(INT8_PROBE, opts, providers=["CPUExecutionProvider"])
    return int(session.run(None, {"a": np.full((1, 64), 255, np.uint8)})[0][0, 0]) != 207


BATCH_LIMIT = 64  # frames in one call at most, however many streams (memory stays bounded)


def dynamic_batch(session) -> int:
    """BATCH_LIMIT when the input's batch axis is symbolic and every output's first axis is that same symbol (so
    output row k is frame k's), else 1."""
    axis = session.get_inputs()[0].shape[0]
    per_frame = all(o.shape and o.shape[0] == axis for o in session.get_outputs())
    return BATCH_LIMIT if isinstance(axis, str) and per_frame else 1


class OrtBackend(Backend):
    name = "onnxruntime"

    def __init__(
        self,
        path: Path,
        threads: int | None = None,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        preferred_providers: tuple[str, ...] | None = None,
        exact_int8: bool | None = None,  # onnxruntime's exact int8 kernels; None: where int8_saturates()
    ):
        ort = require("onnxruntime", "runtime", "running ONNX models")
        if preferred_providers:  # a device profile's wish list: take what this build has, and say what it lacks
            available = ort.get_available_providers()
            providers = tuple(p for p in preferred_providers if p in available) or ("CPUExecutionProvider",)
            lacking = [p for p in preferred_providers if p not in available]
            if lacking:
                log.warning(
                    "%s: this onnxruntime build has no %s; running on %s", path.name, ", ".join(lacking), ", ".join(providers)
                )
        missing = [p for p in providers if p not in ort.get_available_providers()]
        if missing:
            raise EdgecvError(
                f"{path}: execution provider(s) {missing} are not in this onnxruntime build "
                f"(available: {ort.get_available_providers()})"
            )
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if int8_saturates() if exact_int8 is None else exact_int8:
            opts.add_session_config_entry(*X64_EXACT_INT8)
        self.path = path
        try:
            self.session = ort.InferenceSession(
                str(path), opts, providers=list(providers), disabled_optimizers=KEEP_FLOAT_LAYERS_FLOAT
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            why = str(exc).splitlines()[0]
            if int8_saturates() and "replace the existing tensor" in why:
                why = (
                    "its layers share a weight, which onnxruntime's exact int8 path for this CPU (no VNNI) cannot load; "
                    "export or import it again with this edgecv, which gives each layer its own"
                )
            raise EdgecvError(f"{path}: onnxruntime cannot load it ({why})") from None
        self.meta = meta_from_props(self.session.get_modelmeta().custom_metadata_map, str(path))
        self._input = self.session.get_inputs()[0].name
        self.max_batch = dynamic_batch(self.session)

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def close(self) -> None:
        self.session = None  # onnxruntime frees the session's arenas with the object

    def replica(self) -> "OrtBackend":
        return self  # InferenceSession.run may be called from several threads at once

    def infer(self, x: np.ndarray) -> list[np.ndarray]:
        if self.session is None:
            raise EdgecvError(f"{self.path}: backend is closed")
        # float outputs as float32; integer ones (in-graph NMS indices) keep their type
        return [
            o if np.issubdtype(o.dtype, np.integer) else np.asarray(o, dtype=np.float32)
            for o in self.session.run(None, {self._input: x})
        ]


@register_backend("onnxruntime", (".onnx",))
def _create(path: Path, threads: int | None = None, **options) -> Backend:
    return OrtBackend(path, threads, **options)
