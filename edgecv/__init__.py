"""edgecv: transfer-learn vision models, quantize them with proof, run them on the edge.

The Python API (the same functions the commands call):

- ``edgecv.load(path, **options)`` -> a ``Model`` whose ``predict(image)`` gives a ``Classification``,
  ``Detections`` or ``Faces`` (device half, no torch: ``edgecv.runtime.api``);
- ``edgecv.train(recipe, **options)`` -> a ``RunResult`` (``edgecv.train.run.train``);
- ``edgecv.export(run, **options)`` -> an ``ExportResult`` (``edgecv.export.run.export``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"


def load(path, threads: int | None = None, backend: str | None = None, **options: Any):
    """An exported artifact, ready to ``predict`` single images (see ``edgecv.runtime.api.Model``)."""
    from edgecv.runtime.api import load as _load

    return _load(path, threads=threads, backend=backend, **options)


def __getattr__(name: str):  # edgecv.train / edgecv.export: callable packages, imported on first use
    if name in ("train", "export"):
        return importlib.import_module(f"edgecv.{name}")
    raise AttributeError(f"module 'edgecv' has no attribute {name!r}")
