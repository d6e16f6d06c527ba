"""LiteRT backend (``ai-edge-litert``, XNNPACK on). Models take batch 1; int8 models take int8 input and
give int8 output, which is dequantized here with the output tensor's own scale and zero point."""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from pathlib import Path

import numpy as np

from edgecv.artifact.tflite import read_tflite_meta
from edgecv.errors import EdgecvError, MissingDependency
from edgecv.runtime.backends._base import Backend, register_backend

log = logging.getLogger(__name__)


def _interpreter_class():
    try:
        return importlib.import_module("ai_edge_litert.interpreter").Interpreter
    except ImportError:
        pass
    try:
        cls = importlib.import_module("tflite_runtime.interpreter").Interpreter
    except ImportError:
        raise MissingDependency("running .tflite models needs ai-edge-litert: pip install 'edgecv[runtime]'") from None
    log.info("ai-edge-litert is not installed; using tflite-runtime (int8 runs without XNNPACK there)")
    return cls


def open_interpreter(path: Path, threads: int | None = None, xnnpack: bool = True):
    """A LiteRT interpreter on ``path``, tensors allocated (``xnnpack`` False: the plain builtin kernels, which the
    interpreter otherwise replaces with XNNPACK's); a file it cannot load is one EdgecvError line. LiteRT's
    C++ prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight to descriptor 2 for every
    interpreter, a line that tells the user nothing: it is dropped (``edgecv --verbose`` keeps it, and inside a
    command that logs the frameworks' output, `export`, it goes to that log)."""
    from edgecv._quiet import fd2_silenced, logging_elsewhere, verbose

    cls = _interpreter_class()
    kwargs = {}
    if not xnnpack:
        resolvers = importlib.import_module(cls.__module__).OpResolverType
        kwargs["experimental_op_resolver_type"] = resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    quiet = contextlib.nullcontext() if verbose() or logging_elsewhere() else fd2_silenced()
    try:
        with quiet:
            interpreter = cls(model_path=str(path), num_threads=threads, **kwargs)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise EdgecvError(f"{path}: LiteRT cannot load it ({str(exc).splitlines()[0]})") from None
    return interpreter


class LiteRTBackend(Backend):
    name = "litert"

    def __init__(self, path: Path, threads: int | None = None, xnnpack: bool = True):
        self.path = path
        self.meta = read_tflite_meta(path)
        self.xnnpack, self.threads = xnnpack, threads
        self.interpreter = open_interpreter(path, threads, xnnpack)
        self._in = self.interpreter.get_input_details()[0]
        self._outs = sorted(self.interpreter.get_output_details(), key=_output_position)

    def close(self) -> None:
        self.interpreter = None  # the interpreter (and its XNNPACK delegate) are freed with the object

    def replica(self) -> "LiteRTBackend":
        return LiteRTBackend(self.path, self.threads, self.xnnpack)  # an interpreter serves one thread at a time

    def infer(self, x: np.ndarray) -> list[np.ndarray]:
        if self.interpreter is None:
            raise EdgecvError(f"{self.path}: backend is closed")
        if x.dtype != self._in["dtype"]:
            raise EdgecvError(f"{self.path}: input is {x.dtype}, the model takes {np.dtype(self._in['dtype'])}")
        rows: list[list[np.ndarray]] = [[] for _ in self._outs]
        for sample in x:
            self.interpreter.set_tensor(self._in["index"], sample[None])
            self.interpreter.invoke()
            for k, d in enumerate(self._outs):
                rows[k].append(self._dequantize(self.interpreter.get_tensor(d["index"]), d))
        return [np.concatenate(r) for r in rows]

    @staticmethod
    def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
        scale, zero = detail["quantization"]
        if np.issubdtype(y.dtype, np.integer) and scale:
            return (y.astype(np.float32) - zero) * np.float32(scale)
        if np.issubdtype(y.dtype, np.integer):  # an unquantized integer output (indices) keeps its type
            return y
        return y.astype(np.float32, copy=False)

    @property
    def providers(self) -> list[str]:
        return ["XNNPACK" if self.xnnpack else "builtin kernels"]


def _output_position(detail: dict) -> tuple[int, int]:
    """The model's own output order: litert-torch names outputs ``..._output_<k>...``; the interpreter's detail
    list follows tensor indices, which a converter may lay out differently."""
    m = re.search(r"output_(\d+)", detail["name"])
    return (int(m.group(1)) if m else 0, detail["index"])


@register_backend("litert", (".tflite",))
def _create(path: Path, threads: int | None = None, xnnpack: bool = True, **options) -> Backend:
    if options:
        raise EdgecvError(f"litert backend: unknown options {sorted(options)}")
    return LiteRTBackend(path, threads, xnnpack)
