"""The ``Task`` protocol of the train/export half and its registry.

A task is everything the train/export half must know about one kind of model: how its recipe trains, how a finished
run's model loads and describes itself as an artifact, how it is evaluated (and what ``edgecv eval`` prints), and which
eval set its fidelity metric reads. Modules here import their heavy parts (torch) inside the methods, so that a tool
that only reads artifacts (``edgecv bench``) can dispatch without torch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgecv.errors import EdgecvError
from edgecv.registry import Registry

if TYPE_CHECKING:
    from edgecv.artifact import ArtifactMeta
    from edgecv.data.splits import Split
    from edgecv.export.fidelity import EvalSet, TaskMetric
    from edgecv.models.run_meta import RunMeta


class Task(ABC):
    """One task's implementation (subclass and ``register_task`` it); the defaults are those of most tasks. A
    subclass that leaves out one of the abstract methods cannot be registered."""

    name: ClassVar[str]
    supports_tta: ClassVar[bool] = False  # `edgecv eval --tta`
    calibrates_on_val: ClassVar[bool] = False  # export calibrates each artifact's threshold on the val split
    frame_drift: ClassVar[bool] = True  # its artifacts see whole frames: export records the drift reference
    graph_nms: ClassVar[bool] = False  # `edgecv export --nms-in-graph`
    # `edgecv import` (edgecv/export/import_model.py): the preprocessing preset a model from elsewhere most likely
    # takes, its output layouts (--layout), whether it needs class names, and why it cannot do without --data (None:
    # it can)
    import_preset: ClassVar[str] = "imagenet"
    import_layouts: ClassVar[tuple[str, ...]] = ()
    import_needs_labels: ClassVar[bool] = True
    import_needs_data: ClassVar[str | None] = None

    @abstractmethod
    def train(self, recipe, run_dir: Path, info, last: dict[str, Any] | None, callbacks=()) -> dict[str, Any]:
        """Train (or, with ``last``, the last.pt being resumed, continue) ``recipe`` into ``run_dir``: its metrics."""

    @abstractmethod
    def load(self, run_dir: Path) -> tuple[Any, RunMeta, ArtifactMeta]:
        """The run's best model in eval mode, its checkpoint's typed meta and the artifact metadata it exports with."""

    @abstractmethod
    def evaluate(self, run_dir: Path, split: str = "test", data: str | None = None, tta: bool = False) -> dict[str, Any]:
        """``edgecv eval``: the metrics of the run's best model on ``split`` (what ``--json`` prints)."""

    @abstractmethod
    def summary(self, result: dict[str, Any], split: str, tta: bool = False) -> str:
        """``edgecv eval``'s lines for ``evaluate``'s result."""

    @abstractmethod
    def fidelity_metric(self) -> TaskMetric:
        """What each artifact's fidelity row measures through the runtime's backends (and the int8 gate compares):
        the metric, its bootstrap scorer for the drop's interval, the output compared with torch fp32."""

    def import_decoder(
        self, outputs: list, labels: list[str], path: Path, layout: str | None, extra: dict[str, str], digest: str
    ) -> Any:
        """``edgecv import``: the artifact's typed decoder for a model from elsewhere, from what it returned on a probe
        input (``outputs``), or an EdgecvError saying why it does not fit (``extra``: the model's own metadata)."""
        raise EdgecvError(f"edgecv import does not take {self.name} models")

    def probe_decoder(self) -> Any:
        """``edgecv import``: a stand-in decoder for the one run of the model that finds its real one (the
        probe file that carries it is deleted after that run)."""
        raise EdgecvError(f"edgecv import does not take {self.name} models")

    def import_thresholds(self, spec) -> Any:
        """``edgecv import``: the artifact's typed thresholds before ``--data`` calibrates any."""
        raise EdgecvError(f"edgecv import does not take {self.name} models")

    def import_data(self, spec, meta: ArtifactMeta):
        """``edgecv import --data``: an ``ImportData`` (test part, calibration part) of the user's images."""
        raise EdgecvError(f"edgecv import --data does not take {self.name} data")

    def eval_set(self, run_dir: Path, split: Split, name: str, input_size: tuple[int, int]) -> EvalSet:
        """The ``name`` split of a run as its fidelity metric reads it."""
        from edgecv.export.fidelity import load_eval_set

        return load_eval_set(name, split.root, split.files[name], split.labels[name], input_size)


_TASKS: Registry[Task] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    return _TASKS.register(cls.name, wrap=lambda c: c())(cls)


def get_task(name: str) -> Task:
    return _TASKS.get(name)


def list_tasks() -> list[str]:
    return _TASKS.names()


def task_of_run(run_dir: str | Path) -> Task:
    """The task of a finished run (its best checkpoint says which)."""
    from edgecv.models.loading import load_checkpoint
    from edgecv.models.run_meta import read_run_meta

    best = Path(run_dir) / "best.pt"
    return get_task(read_run_meta(load_checkpoint(best).get("meta"), best).task)
