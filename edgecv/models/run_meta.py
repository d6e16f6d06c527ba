"""What a run's checkpoint says about its model (best.pt's ``meta``), typed per model and read field by field: a
checkpoint missing a field its model needs is one error naming the file and the field, never a KeyError later.
The trainers write these fields (``dataclasses.asdict`` of the same classes reads back equal); the loaders in
``loading.py`` build models from them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from edgecv.errors import EdgecvError


@dataclass(frozen=True, kw_only=True)
class RunMeta:
    """The fields every run's model has."""

    task: str
    classes: tuple[str, ...]  # class names (detectors, classifiers) or the training identities (embedders)
    backbone: str
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights_source: str | None = None  # where the ImageNet weights came from
    recipe_name: str | None = None
    edgecv_version: str | None = None
    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for name in ("classes", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclass(frozen=True, kw_only=True)
class ClassifierMeta(RunMeta):
    dropout: float
    kind: ClassVar[str] = "classify"


@dataclass(frozen=True, kw_only=True)
class DetectorMeta(RunMeta):
    strides: tuple[int, ...]
    channels: int
    head_convs: int
    labels_report: dict[str, Any] | None = None  # boxes dropped or clipped while reading the training set
    kind: ClassVar[str] = "detect"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))


@dataclass(frozen=True, kw_only=True)
class EmbedderMeta(RunMeta):
    dim: int
    dropout: float
    head: str = "pool"  # runs from before the GDC head pooled
    loss: str | None = None
    threshold: dict[str, Any] | None = None  # calibrated on the val people at the end of the run

    kind: ClassVar[str] = "embed"


_KINDS = {cls.kind: cls for cls in (ClassifierMeta, DetectorMeta, EmbedderMeta)}


def read_run_meta(raw: Any, where: str | Path) -> RunMeta:
    """The typed meta of a checkpoint's ``meta`` dict (``where``: the file, for the error)."""
    if not isinstance(raw, dict):
        raise EdgecvError(f"{where}: not an edgecv run checkpoint (no 'meta' entry)")
    task = raw.get("task", "classify")  # classifier runs from before detectors existed wrote no task
    cls = _KINDS.get(task)
    if cls is None:
        raise EdgecvError(f"{where}: checkpoint of an unknown task {task!r} (known: {', '.join(sorted(_KINDS))})")
    fields = [f for f in dataclasses.fields(cls) if f.init]
    for f in fields:
        if f.name not in raw and f.default is dataclasses.MISSING and f.name != "task":
            raise EdgecvError(f"{where}: the checkpoint's meta has no {f.name!r} (a {task} run's model needs it)")
    return cls(**{f.name: raw[f.name] for f in fields if f.name in raw} | {"task": task})
