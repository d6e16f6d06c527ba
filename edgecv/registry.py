"""One small registry for everything edgecv looks up by name: tasks, backbones, converters, backends, postprocess
functions and pipeline stages. Entries register themselves when their module is imported (the package
``__init__`` imports them, as timm does); registering a name twice is an error, and an unknown name is one line
listing the known ones. Standard library only: the device half uses it too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from edgecv.errors import EdgecvError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, missing: str | None = None):
        """``kind`` names an entry in messages ("backbone"); ``missing`` replaces "unknown {kind}" for a name
        that has no entry (e.g. "the runtime has no postprocess for task")."""
        self.kind, self.missing = kind, missing or f"unknown {kind}"
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        self._refuse_twice(name)
        self._entries[name] = entry
        return entry

    def _refuse_twice(self, name: str) -> None:
        if name in self._entries:
            raise EdgecvError(f"{self.kind} {name!r} is registered twice")

    def register(self, name: str, wrap: Callable[[T], object] | None = None) -> Callable[[T], T]:
        """A decorator: ``@registry.register("name")`` adds the decorated object (or ``wrap(obj)``) and returns
        the object unchanged."""

        def decorate(obj: T) -> T:
            self._refuse_twice(name)  # before ``wrap`` builds anything
            self._entries[name] = wrap(obj) if wrap else obj
            return obj

        return decorate

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise EdgecvError(f"{self.missing} {name!r} (known: {', '.join(self.names()) or 'none'})")
        return self._entries[name]

    def find(self, name: str) -> T | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def values(self) -> Iterator[T]:
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
