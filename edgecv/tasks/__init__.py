"""Tasks of the train/export half: ``classify``, ``detect`` and ``embed``, each one registered ``Task`` in a file
of its own; the only place that knows what a task is. Adding a task is one more file here (and its tests).
The device half never imports this package: it dispatches through its own registries, keyed by the artifact's task."""

from edgecv.tasks import classify, detect, embed  # noqa: F401  (each registers itself)
from edgecv.tasks._base import Task, get_task, list_tasks, register_task, task_of_run

__all__ = ["Task", "get_task", "list_tasks", "register_task", "task_of_run"]
