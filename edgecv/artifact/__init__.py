"""The artifact contract between the train side and the device side: the typed metadata schema (``meta``,
``contract``) and its reading and writing for each format (``onnx``, ``tflite``, ``tensorrt``). Standard library
only at import; each format's reader needs that format's package (onnx, or LiteRT's flatbuffer schema) when
called. The device imports this package; it never imports torch or the train side."""

from __future__ import annotations

from pathlib import Path

from edgecv.artifact.contract import (
    ClassifyDecoder,
    ClassifyThresholds,
    DetectDecoder,
    DetectThresholds,
    EmbedDecoder,
    EmbedThresholds,
    NmsInGraph,
)
from edgecv.artifact.meta import COLORS, LAYOUTS, META_KEY, PRECISIONS, RESIZES, SCHEMA_VERSION, TASKS, ArtifactMeta
from edgecv.artifact.onnx import meta_from_props, set_onnx_meta

__all__ = [
    "COLORS",
    "LAYOUTS",
    "META_KEY",
    "PRECISIONS",
    "RESIZES",
    "SCHEMA_VERSION",
    "TASKS",
    "ArtifactMeta",
    "ClassifyDecoder",
    "ClassifyThresholds",
    "DetectDecoder",
    "DetectThresholds",
    "EmbedDecoder",
    "EmbedThresholds",
    "NmsInGraph",
    "meta_from_props",
    "read_meta",
    "set_onnx_meta",
    "write_meta",
]


def read_meta(path: str | Path) -> ArtifactMeta:
    """The metadata of an artifact file: .onnx, .tflite, or a TensorRT engine (from its sidecar)."""
    path = Path(path)
    if path.suffix == ".onnx":
        from edgecv.artifact.onnx import read_onnx_meta

        return read_onnx_meta(path)
    if path.suffix == ".tflite":
        from edgecv.artifact.tflite import read_tflite_meta

        return read_tflite_meta(path)
    from edgecv.artifact.tensorrt import read_engine_meta

    return read_engine_meta(path)


def write_meta(src: str | Path, dst: str | Path, meta: ArtifactMeta, final: str | Path | None = None) -> None:
    """Copy the model ``src`` to ``dst`` with ``meta`` inside it (a TensorRT engine: in the sidecar of ``final``,
    the name a staged ``dst`` becomes). The format is ``final``'s (or ``dst``'s) suffix."""
    suffix = Path(final or dst).suffix
    if suffix == ".onnx":
        from edgecv.artifact.onnx import write_onnx_meta

        write_onnx_meta(src, dst, meta)
    elif suffix == ".tflite":
        from edgecv.artifact.tflite import write_tflite_meta

        write_tflite_meta(src, dst, meta)
    else:
        from edgecv.artifact.tensorrt import write_engine_meta

        write_engine_meta(src, dst, meta, final)
