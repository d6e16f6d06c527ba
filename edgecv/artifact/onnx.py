"""edgecv metadata in an ONNX model: the ``edgecv`` entry of its ``metadata_props`` (onnxruntime shows the same
map as ``custom_metadata_map``, so the device reads it without the ``onnx`` package)."""

from __future__ import annotations

from pathlib import Path

from edgecv._deps import require
from edgecv.artifact.meta import META_KEY, ArtifactMeta
from edgecv.errors import EdgecvError


def meta_from_props(props: dict[str, str], source: str) -> ArtifactMeta:
    """From a model's string metadata map (ONNX metadata_props, onnxruntime's custom_metadata_map)."""
    if META_KEY not in props:
        raise EdgecvError(f"{source}: carries no edgecv metadata (was it exported by `edgecv export`?)")
    return ArtifactMeta.from_json(props[META_KEY], source)


def read_onnx_meta(path: str | Path) -> ArtifactMeta:
    onnx = require("onnx", "import", "reading ONNX metadata")
    proto = onnx.load(str(path), load_external_data=False)
    return meta_from_props({p.key: p.value for p in proto.metadata_props}, str(path))


def set_onnx_meta(proto, meta: ArtifactMeta) -> None:
    """Replace the edgecv entry of an ONNX ModelProto's metadata_props (the other entries stay)."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key != META_KEY]
    del proto.metadata_props[:]
    for key, value in [*keep, (META_KEY, meta.to_json())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def write_onnx_meta(src: str | Path, dst: str | Path, meta: ArtifactMeta) -> None:
    onnx = require("onnx", "import", "writing ONNX metadata")
    proto = onnx.load(str(src))
    set_onnx_meta(proto, meta)
    onnx.save(proto, str(dst))
