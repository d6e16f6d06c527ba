"""Publish an artifact with its edgecv metadata inside (to add its fidelity report, say), atomically."""

from __future__ import annotations

from pathlib import Path

from edgecv.artifact import ArtifactMeta, write_meta
from edgecv.export._atomic import atomic_output


def publish(staged: str | Path, final: str | Path, meta: ArtifactMeta) -> Path:
    """Write ``staged`` to ``final`` with ``meta`` inside (temp file + rename: the old ``final`` survives a failure)."""
    staged, final = Path(staged), Path(final)
    with atomic_output(final) as tmp:
        write_meta(staged, tmp, meta, final=final)
    return final
