"""The backend interface and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.errors import EdgecvError
from edgecv.registry import Registry


class Backend(ABC):
    """One loaded artifact. ``infer`` takes a batch in the artifact's input layout and dtype (float32, or
    int8 when ``meta.input_quant`` is set) and returns the outputs with a batch axis: float outputs as float32,
    integer ones (in-graph NMS indices) in their own integer type. ``close`` frees what the backend holds (a
    session, an interpreter, device memory); a closed backend refuses ``infer``. Backends are context managers."""

    name: str
    meta: ArtifactMeta
    path: Path
    # frames one ``infer`` may take, every output batch-first (what a multi-source run batches across streams); 1: the
    # artifact's batch is fixed (TFLite) or an output is not per frame (in-graph NMS indices)
    max_batch: int = 1

    @abstractmethod
    def infer(self, x: np.ndarray) -> list[np.ndarray]: ...

    def close(self) -> None:
        """Release the runtime's resources; calling it again does nothing."""

    def replica(self) -> "Backend | None":
        """A backend to call ``infer`` on from another thread while this one runs: ``self`` where the runtime allows
        concurrent calls on one loaded model, a new one on the same file where it does not, None where the runtime
        serves one caller (the pipeline then runs one inference worker)."""
        return None

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def providers(self) -> list[str]:
        """What actually runs the graph (execution providers, delegates), for reports."""
        return [self.name]


@dataclass(frozen=True)
class _Entry:
    name: str
    suffixes: tuple[str, ...]
    factory: Callable[..., Backend]


_REGISTRY: Registry[_Entry] = Registry("backend")


def register_backend(name: str, suffixes: tuple[str, ...]) -> Callable[[Callable[..., Backend]], Callable[..., Backend]]:
    return _REGISTRY.register(name, lambda factory: _Entry(name, suffixes, factory))


def list_backends() -> list[str]:
    return _REGISTRY.names()


def backend_for(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    for entry in _REGISTRY.values():
        if suffix in entry.suffixes:
            return entry.name
    known = ", ".join(s for e in _REGISTRY.values() for s in e.suffixes)
    raise EdgecvError(f"{path}: no backend runs {suffix or 'files without a suffix'!r} (known: {known})")


def create_backend(path: str | Path, name: str | None = None, threads: int | None = None, **options) -> Backend:
    """Load ``path`` with backend ``name`` (default: chosen by file type)."""
    path = Path(path)
    if not path.is_file():
        raise EdgecvError(f"{path}: no such model file")
    return _REGISTRY.get(name or backend_for(path)).factory(path, threads=threads, **options)
