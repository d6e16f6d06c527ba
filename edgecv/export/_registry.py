"""Converters by name: each a plain function ``(source, spec: ConvertSpec) -> Path``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecv.registry import Registry


@dataclass(frozen=True)
class Converter:
    name: str
    source: str  # "torch" (an nn.Module) or "onnx" (a path to an fp32 .onnx)
    fn: Callable[[Any, Any], Path]


_CONVERTERS: Registry[Converter] = Registry("converter")


def register_converter(name: str, source: str) -> Callable[[Callable[[Any, Any], Path]], Callable[[Any, Any], Path]]:
    return _CONVERTERS.register(name, lambda fn: Converter(name, source, fn))


def get_converter(name: str) -> Converter:
    return _CONVERTERS.get(name)


def list_converters() -> list[str]:
    return _CONVERTERS.names()
