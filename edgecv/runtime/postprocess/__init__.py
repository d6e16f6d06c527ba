"""Raw backend outputs -> typed results, per task (registry keyed by the artifact's task)."""

from __future__ import annotations

from collections.abc import Callable

from edgecv.errors import EdgecvError

_POSTPROCESS: dict[str, Callable] = {}


def register_postprocess(task: str):
    def wrap(fn: Callable) -> Callable:
        if task in _POSTPROCESS:
            raise EdgecvError(f"postprocess for task {task!r} is registered twice")
        _POSTPROCESS[task] = fn
        return fn

    return wrap


def get_postprocess(task: str) -> Callable:
    if task not in _POSTPROCESS:
        raise EdgecvError(f"the runtime has no postprocess for task {task!r} (known: {', '.join(sorted(_POSTPROCESS))})")
    return _POSTPROCESS[task]


from edgecv.runtime.postprocess import classify as _classify  # noqa: E402,F401
from edgecv.runtime.postprocess import detect as _detect  # noqa: E402,F401
from edgecv.runtime.postprocess import embed as _embed  # noqa: E402,F401
