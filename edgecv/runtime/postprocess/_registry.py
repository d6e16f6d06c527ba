"""The postprocess registry: each task's function with the typed options it takes (see the package's docstring)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecv.errors import EdgecvError
from edgecv.registry import Registry


@dataclass(frozen=True)
class Postprocess:
    task: str
    fn: Callable[..., Any]  # fn(outputs, meta, transform=..., **options)
    options: type  # a frozen dataclass whose fields are fn's keyword arguments
    result: type  # what fn returns (Classification, Detections, Faces): a stage that needs boxes asks for these
    # the model's confidence on one frame's raw outputs, as the drift monitor observes it (after ``conf_filter`` for
    # detectors); export measures the drift reference with the same function. None: the task has no drift monitor
    confidence: Callable[[list, float], float] | None = None
    # raw outputs (batch first) of an artifact -> the form ``fn`` and ``confidence`` read (an imported model's own
    # output layout, named by its metadata's decoder, turned into edgecv's); None: they are that form already
    canonical: Callable[[list, Any], list] | None = None

    def to_canonical(self, outputs: list, meta) -> list:
        return self.canonical(outputs, meta) if self.canonical else outputs

    def __call__(self, outputs, meta, options=None, transform=None, canonical: bool = False):
        """The typed result of one frame's raw outputs (``canonical``: already through ``to_canonical``)."""
        opts = options if options is not None else self.options()
        if not isinstance(opts, self.options):
            raise EdgecvError(f"postprocess {self.task!r} takes {self.options.__name__}, not {type(opts).__name__}")
        return self.fn(
            outputs if canonical else self.to_canonical(outputs, meta),
            meta,
            transform=transform,
            **{f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)},
        )


_POSTPROCESS: Registry[Postprocess] = Registry("postprocess for task", "the runtime has no postprocess for task")


def register_postprocess(
    task: str,
    options: type,
    result: type,
    confidence: Callable[[list, float], float] | None = None,
    canonical: Callable[[list, Any], list] | None = None,
):
    return _POSTPROCESS.register(task, lambda fn: Postprocess(task, fn, options, result, confidence, canonical))


def get_postprocess(task: str) -> Postprocess:
    return _POSTPROCESS.get(task)


def options_for(task: str, given: dict[str, Any]):
    """The task's options from ``given`` (None values: the option's default); names the task does not take are
    an error (the pipeline's stages refuse them earlier, with the user's spelling of the flag)."""
    post = get_postprocess(task)
    names = {f.name for f in dataclasses.fields(post.options)}
    foreign = sorted(k for k, v in given.items() if v is not None and k not in names)
    if foreign:
        raise EdgecvError(f"{', '.join(foreign)} does not apply to a {task} artifact")
    return post.options(**{k: v for k, v in given.items() if v is not None})


def list_postprocess() -> list[str]:
    return _POSTPROCESS.names()
