"""Names for files made from an input file (explain's PNGs, predict's annotated copies) that never let one
input's outputs replace another's: ``<parent>_<stem>``, and where two inputs share that (the same folder and file
names under different roots), the second gets a short hash of its path. ``index.json`` in the output folder records
which input each name belongs to."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


class OutputNames:
    """The names in one output folder: ``stem(source)`` for each input; ``save()`` writes the index (once, at the
    end of a batch: a folder of 10,000 images is not 10,000 rewrites of a growing file)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self._path = self.out / "index.json"
        try:
            self.index: dict[str, str] = json.loads(self._path.read_text()) if self._path.is_file() else {}
        except json.JSONDecodeError:
            self.index = {}
        self._changed = False

    def stem(self, source: str | Path) -> str:
        """The same input always gets the same stem, so making its outputs again replaces its own only."""
        src = Path(source).resolve()
        stem = f"{src.parent.name}_{src.stem}" if src.parent.name else src.stem
        if self.index.get(stem, str(src)) != str(src):
            stem = f"{stem}-{hashlib.sha1(str(src).encode()).hexdigest()[:8]}"
        if self.index.get(stem) != str(src):
            self.index[stem], self._changed = str(src), True
        return stem

    def save(self) -> None:
        if self._changed:
            self.out.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.index, indent=1, sort_keys=True))
            tmp.replace(self._path)
            self._changed = False


def output_stem(source: str | Path, out: str | Path) -> str:
    """One input's stem in ``out`` (the index updated at once)."""
    names = OutputNames(out)
    stem = names.stem(source)
    names.save()
    return stem
