"""Training runs unchanged under torchrun: two CPU processes over gloo."""

import json
import subprocess
import sys

from edgecv.models.loading import load_checkpoint


def test_torchrun_two_cpu_processes(tiny_recipe, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "edgecv.cli",
        "train",
        str(tiny_recipe),
        "--out",
        str(out),
        "--epochs",
        "2",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    history = load_checkpoint(out / "last.pt")["loop"]["history"]
    assert [h["stage"] for h in history] == ["head", "head", "finetune", "finetune"]
    assert proc.stdout.count("test top-1:") == 1  # only rank 0 reports
