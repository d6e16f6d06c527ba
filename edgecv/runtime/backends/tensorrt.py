"""TensorRT engine backend (Jetson / NVIDIA GPUs). An engine cannot hold metadata: its sidecar ``<engine>.json``
does (``edgecv.artifact.tensorrt``; a sidecar for another engine is refused). Device memory
through cuda-python. Not runnable on machines without an NVIDIA GPU: there it fails with one line."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from edgecv._deps import require
from edgecv.artifact.tensorrt import file_sha256, read_engine_meta, sidecar_path  # noqa: F401  (re-exported)
from edgecv.errors import EdgecvError, MissingDependency
from edgecv.runtime.backends._base import Backend, register_backend

TENSORRT_HOW = (
    "it ships with JetPack (python3-libnvinfer; see Dockerfile.jetson) or, on x86 NVIDIA GPUs, "
    "NVIDIA's wheels: pip install tensorrt cuda-python"
)


def _cudart():
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise MissingDependency("running TensorRT engines needs cuda-python: pip install cuda-python")


def _check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise EdgecvError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


def _host_dtype(trt, engine, name: str) -> np.dtype:
    """The numpy type of an engine tensor (float32, float16, int32, int64, int8, bool ...), as TensorRT reports it."""
    return np.dtype(trt.nptype(engine.get_tensor_dtype(name)))


class TensorRTBackend(Backend):
    """One engine, one execution context and one CUDA stream; device buffers grow to the largest batch seen and
    are freed, with the stream, by ``close``. Outputs come back in their own dtypes (float16 as float32)."""

    name = "tensorrt"

    def __init__(self, path: Path, threads: int | None = None):
        trt = require("tensorrt", "runtime", "running TensorRT engines", how=TENSORRT_HOW)
        self.trt, self.cudart = trt, _cudart()
        self.path, self.meta = path, read_engine_meta(path)
        self._buffers: dict[str, tuple[int, int]] = {}
        self.stream = None
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EdgecvError(f"{path}: TensorRT cannot deserialize it (built for another TensorRT or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: _host_dtype(trt, self.engine, n) for n in names}
        self.stream = _check(self.cudart.cudaStreamCreate())
        self.max_batch = self._profile_batch()

    def _profile_batch(self) -> int:
        """The optimisation profile's largest batch when every output's batch axis is dynamic too, else 1."""
        try:
            largest = int(self.engine.get_tensor_profile_shape(self.inputs[0], 0)[2][0])
            per_frame = all(self.engine.get_tensor_shape(n)[0] == -1 for n in self.outputs)
        except (IndexError, RuntimeError, TypeError):  # no profile: a static engine
            return 1
        return max(1, largest) if per_frame else 1

    def _device(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < max(nbytes, 1):
            if ptr:
                _check(self.cudart.cudaFree(ptr))
                self._buffers.pop(name)
            ptr = _check(self.cudart.cudaMalloc(max(nbytes, 1)))
            self._buffers[name] = (ptr, max(nbytes, 1))
        return ptr

    def infer(self, x: np.ndarray) -> list[np.ndarray]:
        if self.stream is None:
            raise EdgecvError(f"{self.path}: backend is closed")
        cu = self.cudart
        h2d, d2h = cu.cudaMemcpyKind.cudaMemcpyHostToDevice, cu.cudaMemcpyKind.cudaMemcpyDeviceToHost
        want = self.dtypes[self.inputs[0]]
        if x.dtype != want:
            raise EdgecvError(f"{self.path}: input is {x.dtype}, the engine takes {want}")
        x = np.ascontiguousarray(x)
        self.context.set_input_shape(self.inputs[0], x.shape)
        ptr = self._device(self.inputs[0], x.nbytes)
        _check(cu.cudaMemcpyAsync(ptr, x.ctypes.data, x.nbytes, h2d, self.stream))
        self.context.set_tensor_address(self.inputs[0], ptr)
        outs = []
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            host = np.empty(shape, dtype=self.dtypes[name])
            self.context.set_tensor_address(name, self._device(name, host.nbytes))
            outs.append(host)
        if not self.context.execute_async_v3(self.stream):
            raise EdgecvError(f"{self.path}: TensorRT execution failed")
        for name, host in zip(self.outputs, outs):
            _check(cu.cudaMemcpyAsync(host.ctypes.data, self._buffers[name][0], host.nbytes, d2h, self.stream))
        _check(cu.cudaStreamSynchronize(self.stream))
        return [o.astype(np.float32) if o.dtype == np.float16 else o for o in outs]

    def close(self) -> None:
        for ptr, _ in self._buffers.values():
            _check(self.cudart.cudaFree(ptr))
        self._buffers.clear()
        if self.stream is not None:
            _check(self.cudart.cudaStreamDestroy(self.stream))
            self.stream = None
        self.context = self.engine = None


@register_backend("tensorrt", (".engine", ".plan"))
def _create(path: Path, threads: int | None = None, **options) -> Backend:
    return TensorRTBackend(path, threads)
