"""Rewrite the edgecv metadata of a finished artifact (to add its fidelity report), atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgecv._deps import require
from edgecv.artifact import META_KEY, ArtifactMeta
from edgecv.export._atomic import atomic_output
from edgecv.runtime._tflite_meta import read_tflite_meta, write_tflite_meta
from edgecv.runtime.backends.tensorrt import file_sha256, read_engine_meta, sidecar_path


def read_meta(path: str | Path) -> ArtifactMeta:
    path = Path(path)
    if path.suffix == ".onnx":
        onnx = require("onnx", "export", "reading ONNX metadata")
        from edgecv.artifact import meta_from_props

        return meta_from_props({p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}, str(path))
    if path.suffix == ".tflite":
        return read_tflite_meta(path)
    return read_engine_meta(path)


def set_onnx_meta(proto, meta: ArtifactMeta) -> None:
    """Replace the edgecv entry of an ONNX ModelProto's metadata_props."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key != META_KEY]
    del proto.metadata_props[:]
    for key, value in [*keep, (META_KEY, meta.to_json())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def publish(staged: str | Path, final: str | Path, meta: ArtifactMeta) -> Path:
    """Write ``staged`` to ``final`` with ``meta`` inside (temp file + rename: the old ``final`` survives a failure)."""
    staged, final = Path(staged), Path(final)
    with atomic_output(final) as tmp:
        if final.suffix == ".onnx":
            onnx = require("onnx", "export", "writing ONNX metadata")
            proto = onnx.load(str(staged))
            set_onnx_meta(proto, meta)
            onnx.save(proto, str(tmp))
        elif final.suffix == ".tflite":
            write_tflite_meta(staged, tmp, meta)
        else:
            shutil.copyfile(staged, tmp)
            write_engine_sidecar(tmp, meta, sidecar_path(final))
    return final


def write_engine_sidecar(engine: Path, meta: ArtifactMeta, side: Path, extra: dict | None = None) -> None:
    data = {"engine_sha256": file_sha256(engine), "meta": json.loads(meta.to_json()), **(extra or {})}
    with atomic_output(side) as tmp:
        tmp.write_text(json.dumps(data, indent=1))
