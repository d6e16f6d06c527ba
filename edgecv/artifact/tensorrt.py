"""edgecv metadata of a TensorRT engine: an engine cannot hold metadata, so export writes a sidecar
``<engine>.json`` keyed by the engine file's sha256; a sidecar for another engine is refused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from edgecv.artifact.meta import ArtifactMeta
from edgecv.errors import EdgecvError


def sidecar_path(engine: str | Path) -> Path:
    return Path(str(engine) + ".json")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_engine_meta(engine: str | Path) -> ArtifactMeta:
    side = sidecar_path(engine)
    if not side.is_file():
        raise EdgecvError(f"{engine}: its metadata sidecar {side.name} is missing (re-export the engine)")
    try:
        data = json.loads(side.read_text())
    except json.JSONDecodeError as exc:
        raise EdgecvError(f"{side}: not valid JSON ({exc})") from None
    if data.get("engine_sha256") != file_sha256(engine):
        raise EdgecvError(f"{engine}: {side.name} describes a different engine (hash mismatch); re-export")
    return ArtifactMeta.from_json(json.dumps(data.get("meta")), str(side))


def write_engine_sidecar(engine: str | Path, meta: ArtifactMeta, side: str | Path, extra: dict | None = None) -> None:
    """The sidecar ``side`` for the engine file ``engine`` (written beside it, then renamed into place)."""
    data = {"engine_sha256": file_sha256(engine), "meta": json.loads(meta.to_json()), **(extra or {})}
    side = Path(side)
    tmp = side.with_name(f".{side.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, side)


def write_engine_meta(src: str | Path, dst: str | Path, meta: ArtifactMeta, final: str | Path | None = None) -> None:
    """Copy the engine ``src`` to ``dst`` and write its sidecar beside ``final`` (the name ``dst`` will be renamed
    to, when it is staged under a temporary one)."""
    shutil.copyfile(src, dst)
    write_engine_sidecar(dst, meta, sidecar_path(final or dst))
