"""``edgecv.train(recipe)`` and ``edgecv.export(run)`` are calls although ``edgecv.train`` and ``edgecv.export``
are also the packages that implement them: a package whose module object is a ``CallableModule`` forwards calls to
its ``__call_target__`` (imported only when called, so ``import edgecv`` stays free of torch)."""

from __future__ import annotations

import importlib
import types
from typing import Any


class CallableModule(types.ModuleType):
    __call_target__ = ""  # "module:function"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, name = self.__call_target__.split(":")
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
