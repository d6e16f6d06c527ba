"""A fake TensorRT + CUDA runtime for machines without an NVIDIA GPU: the calls edgecv makes, with device memory
as Python buffers, so the backend's dtype handling and frees and the builder's version paths are tested here
(the real check runs when a GPU machine is lent: tests/export/test_onnx2trt.py's needs_trt tests)."""

from __future__ import annotations

import ctypes
import enum
import types

import numpy as np


class FakeCudart:
    class cudaMemcpyKind:  # noqa: N801 (CUDA's names)
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self) -> None:
        self.mem: dict[int, ctypes.Array] = {}
        self.streams: set[int] = set()
        self._next = 1000

    def _id(self) -> int:
        self._next += 1
        return self._next

    def cudaStreamCreate(self):  # noqa: N802
        s = self._id()
        self.streams.add(s)
        return (0, s)

    def cudaStreamDestroy(self, s):  # noqa: N802
        self.streams.remove(s)
        return (0,)

    def cudaMalloc(self, n):  # noqa: N802
        buf = ctypes.create_string_buffer(n)
        self.mem[ctypes.addressof(buf)] = buf
        return (0, ctypes.addressof(buf))

    def cudaFree(self, ptr):  # noqa: N802
        del self.mem[ptr]
        return (0,)

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):  # noqa: N802
        assert stream in self.streams
        target = dst if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice else src
        assert target in self.mem and len(self.mem[target]) >= n, "copy outside an allocation"
        ctypes.memmove(dst, src, n)
        return (0,)

    def cudaStreamSynchronize(self, stream):  # noqa: N802
        return (0,)


class DataType(enum.Enum):
    FLOAT = np.float32
    HALF = np.float16
    INT64 = np.int64


class _Engine:
    """Input ``x`` float32 (n, 3, h, w); outputs ``scores`` float16 (n, 2) = mean and max of each sample, and
    ``indices`` int64 (n, 3) = [sample, 7, 2**40 + sample] (a value float32 cannot hold)."""

    tensors = {"x": DataType.FLOAT, "scores": DataType.HALF, "indices": DataType.INT64}

    def __init__(self, trt) -> None:
        self.trt = trt
        self.num_io_tensors = 3

    def get_tensor_name(self, i):
        return list(self.tensors)[i]

    def get_tensor_mode(self, name):
        return self.trt.TensorIOMode.INPUT if name == "x" else self.trt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return self.tensors[name]

    def get_tensor_shape(self, name):  # -1: a dynamic axis (the batch), as TensorRT reports it
        return {"x": (-1, 3, 4, 4), "scores": (-1, 2), "indices": (-1, 3)}[name]

    def get_tensor_profile_shape(self, name, profile):  # min, opt, max of the one profile edgecv builds
        assert name == "x" and profile == 0
        return [(1, 3, 4, 4), (1, 3, 4, 4), (8, 3, 4, 4)]

    def create_execution_context(self):
        return _Context()


class _Context:
    def __init__(self) -> None:
        self.shape, self.addr = None, {}

    def set_input_shape(self, name, shape):
        self.shape = tuple(shape)

    def get_tensor_shape(self, name):
        return {"scores": (self.shape[0], 2), "indices": (self.shape[0], 3)}[name]

    def set_tensor_address(self, name, ptr):
        self.addr[name] = ptr

    def execute_async_v3(self, stream):
        n = self.shape[0]
        x = np.ctypeslib.as_array((ctypes.c_float * int(np.prod(self.shape))).from_address(self.addr["x"]))
        x = x.reshape(self.shape)
        scores = np.stack([x.mean((1, 2, 3)), x.max((1, 2, 3))], 1).astype(np.float16)
        indices = np.stack([np.arange(n), np.full(n, 7), 2**40 + np.arange(n)], 1).astype(np.int64)
        for name, value in (("scores", scores), ("indices", indices)):
            ctypes.memmove(self.addr[name], value.ctypes.data, value.nbytes)
        return True


def fake_tensorrt(version: str = "10.3.0", calls: list | None = None) -> types.ModuleType:
    """A ``tensorrt`` module: runtime side (deserialise, run) and builder side (flags recorded in ``calls``)."""
    calls = [] if calls is None else calls
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = calls
    trt.nptype = lambda dt: dt.value
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return _Engine(trt) if data == b"fake engine" else None

    major = int(version.split(".")[0])
    flags = {"FP16": "FP16"} if major >= 11 else {"FP16": "FP16", "INT8": "INT8"}
    trt.BuilderFlag = types.SimpleNamespace(**flags)
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=5)

    class Network:
        def get_input(self, i):
            return types.SimpleNamespace(name="x")

    class Config:
        def set_flag(self, flag):
            calls.append(("flag", flag))

        def add_optimization_profile(self, profile):
            calls.append(("profile", profile.shapes))

    class Profile:
        def set_shape(self, name, *shapes):
            self.shapes = shapes

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls.append(("network", flags))
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            return b"fake engine"

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = 0

        def parse(self, data):
            calls.append(("parse", data))
            return True

    trt.Logger, trt.Runtime, trt.Builder, trt.OnnxParser = Logger, Runtime, Builder, OnnxParser
    return trt
