"""Training runs unchanged under torchrun: two CPU processes over gloo train every task as one process does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from edgecv.models.loading import load_checkpoint
from edgecv.train.distributed import DistInfo, ddp, share_weight
from edgecv.train.embed import EmbedLoss, rank_part

KINDS = ("arcface", "triplet", "arcface+triplet")


def torchrun_train(recipe, out, *args, timeout=300):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "edgecv.cli"]
    env = {**os.environ, "TMPDIR": str(Path(out).parent)}  # torchrun's own log folder (torchelastic_*) goes there too
    proc = subprocess.run(
        [*cmd, "train", str(recipe), "--out", str(out), *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def history(run):
    return load_checkpoint(run / "last.pt")["loop"]["history"]


def test_torchrun_two_cpu_processes(tiny_recipe, tmp_path):
    out = tmp_path / "ddp"
    proc = torchrun_train(tiny_recipe, out, "--epochs", "2")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert [h["stage"] for h in history(out)] == ["head", "head", "finetune", "finetune"]
    assert proc.stdout.count("test top-1:") == 1  # only rank 0 reports


def test_a_detector_trains_on_two_processes_as_on_one(det_run, tmp_path):
    """Same recipe, same seeds: every epoch's train loss within 3% and val loss within 2% of the one-process run's.
    Each rank takes every other image of each global batch; the detection loss is normalised by each rank's own
    positives and BatchNorm in the neck sees half a batch, so the two runs differ a little, not by chance."""
    one = det_run[0]
    two = tmp_path / "two"
    proc = torchrun_train(one / "recipe.yaml", two)
    h1, h2 = history(one), history(two)
    assert [(h["stage"], h["epoch"]) for h in h2] == [(h["stage"], h["epoch"]) for h in h1]
    for a, b in zip(h1, h2):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.03), (a, b)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=0.02), (a, b)
    assert proc.stdout.count("test mAP50:") == 1  # only rank 0 reports
    assert json.loads((two / "split.json").read_text())["files"] == json.loads((one / "split.json").read_text())["files"]


def test_an_embedder_trains_on_two_processes_as_on_one(embed_run, tmp_path):
    """Same recipe, same seeds: test AUC within 0.03 and TAR@FAR=1e-2 within 0.1 of the one-process run's. The
    gradients are the one-process gradients (next test); what differs is BatchNorm in the head, which sees each
    rank's half of a batch (SyncBatchNorm is GPU-only), and the dropout draws, so the two runs differ as two trainings
    of one recipe do. The bounds are about three standard errors of the difference of two runs for TAR@FAR=1e-2
    (about 0.4 from 360 genuine pairs: 0.036) and about two for AUC (0.010 a run)."""
    one = embed_run[0]
    two = tmp_path / "two"
    proc = torchrun_train(one / "recipe.yaml", two)
    m1, m2 = (json.loads((r / "metrics.json").read_text())["test"] for r in (one, two))
    assert m2["auc"] == pytest.approx(m1["auc"], abs=0.03), (m1, m2)
    assert m2["tar@far=0.01"] == pytest.approx(m1["tar@far=0.01"], abs=0.1), (m1, m2)
    assert len(history(two)) == len(history(one))
    assert "threshold" in load_checkpoint(two / "best.pt")["meta"]  # calibrated once, by rank 0
    assert proc.stdout.count("TAR@FAR=1e-2") == 1


def _grads(rank: int, world: int, port: int, out: str) -> None:
    """Each loss kind's gradient of a 32-image P x K batch (8 people x 4), computed on this rank's share."""
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    info = DistInfo(rank, world, torch.device("cpu"))
    x, y = torch.randn(32, 16, generator=torch.Generator().manual_seed(0)), torch.arange(8).repeat_interleave(4)
    grads = {}
    for kind in KINDS:
        torch.manual_seed(1)
        model = nn.ModuleDict({"fc": nn.Linear(16, 8), "loss": EmbedLoss(kind, 8, 8, 0.5, 30, 0.2, world)})
        step = _Step(model)
        part, _, weight = rank_part(np.arange(32), 4, info)
        step_net = ddp(step, info)
        step_net(x[part], y[part], weight)[0].backward()
        grads[kind] = [p.grad.clone() for p in model.parameters()]
    if rank == 0:
        torch.save(grads, out)
    if world > 1:
        dist.destroy_process_group()


class _Step(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, y, weight):
        return self.model["loss"](self.model["fc"](x), y, weight)


def test_split_batches_give_the_one_process_gradient(tmp_path):
    """ArcFace weighted per share and pytorch-metric-learning's gathering triplet miner: two gloo processes end
    with the gradient one process computes on the whole batch."""
    _grads(0, 1, 0, str(tmp_path / "one.pt"))
    port = 29500 + os.getpid() % 1000
    mp.spawn(_grads, args=(2, port, str(tmp_path / "two.pt")), nprocs=2)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    for kind in KINDS:
        for a, b in zip(one[kind], two[kind]):
            assert a.abs().max() > 0
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=lambda m: f"{kind}: {m}")


def test_share_weights_make_the_global_mean():
    for size in (1, 5, 8):
        parts = [share_weight(size, DistInfo(r, 3, torch.device("cpu"))) for r in range(3)]
        assert sum(k for k, _ in parts) == size
        # DDP averages the ranks' gradients: (1/W) sum_r w_r * mean_r is the global mean when the weights average 1
        # (a rank holding nothing of a batch smaller than the world weighs its stand-in item 0)
        assert sum(w for _, w in parts) / 3 == pytest.approx(1.0)
        assert all(w == 0 for k, w in parts if k == 0)


def test_the_triplet_loss_refuses_identities_that_do_not_split_evenly():
    from edgecv.errors import EdgecvError
    from edgecv.train.embed import check_world

    two = DistInfo(0, 2, torch.device("cpu"))
    check_world("triplet", 32, 100, two)  # 8 people a batch, 4 on each process
    check_world("arcface", 12, 100, two)  # a mean over images: any split
    with pytest.raises(EdgecvError, match="train.batch_size 12 gives 3 identities"):
        check_world("arcface+triplet", 12, 100, two)
