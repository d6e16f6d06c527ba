"""The task registry: one registered Task per task, found by name or from a finished run."""

import pytest

from edgecv.errors import EdgecvError
from edgecv.tasks import Task, get_task, list_tasks, register_task, task_of_run


def test_every_recipe_task_is_registered_once():
    from edgecv.artifact import TASKS

    assert list_tasks() == sorted(TASKS) == ["classify", "detect", "embed"]
    assert [get_task(t).name for t in list_tasks()] == list_tasks()

    class Again(Task):
        name = "detect"

    with pytest.raises(EdgecvError, match="registered twice"):
        register_task(Again)
    with pytest.raises(EdgecvError, match=r"unknown task 'pose' \(known: classify, detect, embed\)"):
        get_task("pose")

    class Half(Task):  # a new task that forgot how it is evaluated
        name = "pose"

        def train(self, recipe, run_dir, info, last, callbacks=()):
            return {}

    with pytest.raises(TypeError, match="abstract"):
        register_task(Half)
    assert list_tasks() == ["classify", "detect", "embed"]


def test_what_each_task_asks_of_export():
    assert [t for t in list_tasks() if get_task(t).calibrates_on_val] == ["embed"]
    assert [t for t in list_tasks() if not get_task(t).frame_drift] == ["embed"]
    assert [t for t in list_tasks() if get_task(t).graph_nms] == ["detect"]
    assert [t for t in list_tasks() if get_task(t).supports_tta] == ["classify"]


def test_each_task_owns_its_fidelity_metric():
    """The fidelity rows, the gate's bootstrap interval and `edgecv bench` read the metric from the task: no table
    keyed by task name outside edgecv/tasks/."""
    import numpy as np

    from edgecv.export.fidelity import EvalSet

    metrics = {t: get_task(t).fidelity_metric() for t in list_tasks()}
    assert {t: m.name for t, m in metrics.items()} == {"classify": "top1", "detect": "map50", "embed": "tar@far=0.01"}
    assert all(m.draws > 0 and callable(m.scorer) for m in metrics.values())
    es = EvalSet("test", np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 1, 1, 0]), ("a", "b", "c", "d"))
    logits = [np.array([[2.0, 0], [0, 1], [1, 0], [3, 0]])]  # three of four right
    assert metrics["classify"].fn(logits, es) == 0.75
    assert metrics["classify"].scorer(logits, es)(np.array([0, 1])) == 1.0


def test_a_run_knows_its_task(tiny_run, tmp_path):
    assert task_of_run(tiny_run).name == "classify"
    with pytest.raises(EdgecvError, match="checkpoint not found"):
        task_of_run(tmp_path)
