"""Names for files made from an input file (explain's PNGs, predict's annotated copies) that never let one
input's outputs replace another's: ``<parent>_<stem>``, and where two inputs share that (the same folder and file
names under different roots), the second gets a short hash of its path. ``index.json`` in the output folder records
which input each name belongs to."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def output_stem(source: str | Path, out: str | Path) -> str:
    """The stem for outputs of ``source`` in ``out`` (recorded in ``out/index.json``); the same input always gets
    the same stem, so explaining it again replaces its own outputs only."""
    out, src = Path(out), str(Path(source).resolve())
    index_path = out / "index.json"
    try:
        index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    except json.JSONDecodeError:
        index = {}
    parent = Path(source).resolve().parent.name
    stem = f"{parent}_{Path(source).stem}" if parent else Path(source).stem
    if index.get(stem, src) != src:
        stem = f"{stem}-{hashlib.sha1(src.encode()).hexdigest()[:8]}"
    if index.get(stem) != src:
        out.mkdir(parents=True, exist_ok=True)
        index[stem] = src
        tmp = index_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
        tmp.replace(index_path)
    return stem
