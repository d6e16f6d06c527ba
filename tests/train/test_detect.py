"""A detector run end to end on a tiny generated set: split, cached-feature head stage, fine-tune, resume,
pycocotools metrics, PR curve and drawn predictions."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from edgecv.cli import cli


def test_detector_run_writes_metrics_curves_and_predictions(det_run):
    run, output = det_run
    assert "test mAP50:" in output
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "detect" and 0 <= m["map50_95"] <= m["map50"] <= 1
    assert set(m["per_class"]) == {"circle", "cross", "ring", "square", "star", "triangle"}
    split = json.loads((run / "split.json").read_text())
    assert 6 <= len(split["files"]["test"]) <= 10 and not set(split["files"]["test"]) & set(split["files"]["train"])
    for f in ("best.pt", "last.pt", "pr_curve.png", "predictions.jpg", "recipe.yaml"):
        assert (run / f).stat().st_size > 0, f
    import torch

    ck = torch.load(run / "last.pt", weights_only=True)
    assert ck["loop"]["stage"] == "finetune" and [h["stage"] for h in ck["loop"]["history"]] == ["head"] * 3 + ["finetune"]
    assert all("val_map50_95" in h for h in ck["loop"]["history"])


def test_resume_continues_from_the_last_checkpoint(det_run, tmp_path):
    run = shutil.copytree(det_run[0], tmp_path / "run")  # the shared run stays as trained (det_export reads it)
    r = CliRunner().invoke(cli, ["train", "ignored.yaml", "--out", str(run), "--resume", "--epochs", "2"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    import torch

    hist = torch.load(run / "last.pt", weights_only=True)["loop"]["history"]
    assert [h["stage"] for h in hist] == ["head"] * 3 + ["finetune"] * 2  # one more fine-tune epoch, head untouched


def test_eval_command_prints_map_per_class(det_run):
    r = CliRunner().invoke(cli, ["eval", str(det_run[0])], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "test mAP50:" in r.output and "AP50-95" in r.output and "triangle" in r.output
