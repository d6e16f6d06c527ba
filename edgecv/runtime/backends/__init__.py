"""Inference backends behind one registry; each imports its library only inside its own module.

``create_backend(path)`` picks the backend from the artifact's file type (or ``name``); every backend
reads the artifact's own metadata, takes the tensor ``preprocess`` made and returns float32 outputs.
"""

from __future__ import annotations

# Importing the modules registers them; none of them imports its inference library at import time.
from edgecv.runtime.backends import litert as _litert  # noqa: F401,E402
from edgecv.runtime.backends import ort as _ort  # noqa: F401,E402
from edgecv.runtime.backends import tensorrt as _tensorrt  # noqa: F401,E402
from edgecv.runtime.backends._base import Backend, create_backend, list_backends, register_backend

__all__ = ["Backend", "create_backend", "list_backends", "register_backend"]
