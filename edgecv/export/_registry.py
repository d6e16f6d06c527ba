"""Converters by name: each a plain function ``(source, spec: ConvertSpec) -> Path``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecv.errors import EdgecvError


@dataclass(frozen=True)
class Converter:
    name: str
    source: str  # "torch" (an nn.Module) or "onnx" (a path to an fp32 .onnx)
    fn: Callable[[Any, Any], Path]


_CONVERTERS: dict[str, Converter] = {}


def register_converter(name: str, source: str) -> Callable[[Callable[[Any, Any], Path]], Callable[[Any, Any], Path]]:
    def wrap(fn: Callable[[Any, Any], Path]) -> Callable[[Any, Any], Path]:
        if name in _CONVERTERS:
            raise EdgecvError(f"converter {name!r} is registered twice")
        _CONVERTERS[name] = Converter(name, source, fn)
        return fn

    return wrap


def get_converter(name: str) -> Converter:
    if name not in _CONVERTERS:
        raise EdgecvError(f"unknown converter {name!r}; known: {', '.join(list_converters())}")
    return _CONVERTERS[name]


def list_converters() -> list[str]:
    return sorted(_CONVERTERS)
