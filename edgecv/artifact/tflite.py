"""edgecv metadata inside a .tflite file: a flatbuffer ``metadata`` entry named ``edgecv`` holding the JSON
(the same slot TFLite Support uses for its own metadata). Read on the device, written by export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecv._deps import require
from edgecv.artifact.meta import META_KEY, ArtifactMeta
from edgecv.errors import EdgecvError


def _schema():
    return require("ai_edge_litert.schema_py_generated", "runtime", "reading .tflite metadata")


def read_tflite_meta(path: str | Path) -> ArtifactMeta:
    buf = Path(path).read_bytes()
    s = _schema()
    if not s.Model.ModelBufferHasIdentifier(buf, 0):
        raise EdgecvError(f"{path}: not a TFLite flatbuffer")
    model = s.Model.GetRootAs(buf, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() and entry.Name().decode() == META_KEY:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            if isinstance(data, int):  # an empty buffer
                break
            return ArtifactMeta.from_json(np.asarray(data, dtype=np.uint8).tobytes().decode("utf-8"), str(path))
    raise EdgecvError(f"{path}: carries no edgecv metadata (was it exported by `edgecv export`?)")


def write_tflite_meta(src: str | Path, dst: str | Path, meta: ArtifactMeta) -> None:
    """Copy ``src`` to ``dst`` with ``meta`` as its edgecv metadata entry (replacing an existing one). Models over
    2 GB (constants stored outside the flatbuffer) are not the edge models this is for."""
    flatbuffers = require("flatbuffers", "runtime", "writing .tflite metadata")
    s = _schema()
    buf = Path(src).read_bytes()
    model = s.ModelT.InitFromPackedBuf(buf, 0)
    for b in model.buffers or []:
        if b.offset and b.offset > 1:  # constant data stored after the flatbuffer: inline it before repacking
            b.data = np.frombuffer(buf, dtype=np.uint8, count=b.size, offset=b.offset)
            b.offset, b.size = 0, 0
    payload = np.frombuffer(meta.to_json().encode("utf-8"), dtype=np.uint8)
    model.metadata = [m for m in (model.metadata or []) if m.name != META_KEY.encode()]
    for m in model.metadata:
        if isinstance(m.name, bytes):
            m.name = m.name.decode()
    buffer = s.BufferT()
    buffer.data = payload
    model.buffers.append(buffer)
    entry = s.MetadataT()
    entry.name = META_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(buf) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    Path(dst).write_bytes(builder.Output())
