"""A run's checkpoint meta is read field by field into its model's typed meta (edgecv/models/run_meta.py)."""

import dataclasses

import pytest
import torch

from edgecv.errors import EdgecvError
from edgecv.models.loading import load_classifier
from edgecv.models.run_meta import ClassifierMeta, DetectorMeta, EmbedderMeta, read_run_meta

BASE = dict(classes=["a", "b"], backbone="efficientnet_lite0", input_size=96, mean=[0.5] * 3, std=[0.5] * 3)
DETECT = dict(BASE, task="detect", strides=[8, 16, 32], channels=32, head_convs=1, recipe_name="r", labels_report={})


def test_each_task_reads_into_its_type_and_back():
    det = read_run_meta(DETECT, "best.pt")
    assert isinstance(det, DetectorMeta) and det.strides == (8, 16, 32) and det.classes == ("a", "b")
    assert read_run_meta(dataclasses.asdict(det), "best.pt") == det
    emb = read_run_meta(dict(BASE, task="embed", dim=16, dropout=0.1), "best.pt")
    assert isinstance(emb, EmbedderMeta) and emb.head == "pool" and emb.threshold is None  # the older runs' defaults
    old = read_run_meta(dict(BASE, dropout=0.2), "best.pt")  # a classifier run from before the task field
    assert isinstance(old, ClassifierMeta) and old.task == "classify"


def test_a_missing_field_or_an_unknown_task_is_one_line_naming_it():
    with pytest.raises(EdgecvError, match=r"runs/det/best.pt: the checkpoint's meta has no 'channels' \(a detect run"):
        read_run_meta({k: v for k, v in DETECT.items() if k != "channels"}, "runs/det/best.pt")
    with pytest.raises(EdgecvError, match="unknown task 'pose'"):
        read_run_meta(dict(BASE, task="pose"), "best.pt")
    with pytest.raises(EdgecvError, match="no 'meta' entry"):
        read_run_meta(None, "best.pt")


def test_a_loader_refuses_another_task_s_run(tmp_path):
    path = tmp_path / "best.pt"
    torch.save({"model": {}, "meta": DETECT}, path)
    with pytest.raises(EdgecvError, match="a detect run, not a classify run"):
        load_classifier(path)
