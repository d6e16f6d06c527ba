"""The face-embedder run: identity-disjoint split, losses, threshold calibration and metrics."""

import json

import numpy as np
import pytest
import torch

from edgecv.data.splits import Split
from edgecv.models.loading import embedder_id, load_checkpoint, load_embedder
from edgecv.train.embed import EmbedLoss, pk_batches


def test_embed_run_writes_verification_metrics_and_a_calibrated_threshold(embed_run):
    run, output = embed_run
    assert "TAR@FAR=1e-2" in output and "match threshold" in output
    split = Split.load(run / "split.json")
    ids = {k: set(v) for k, v in split.labels.items()}
    assert not (ids["train"] & ids["test"]) and not (ids["train"] & ids["val"])
    m = json.loads((run / "metrics.json").read_text())
    t = m["test"]
    assert t["identities"] == len(ids["test"]) and t["impostor_pairs"] > 1000
    # the tiny run (20 head epochs on ~160 generated people at 96 px) must beat chance by far on unseen people
    assert t["auc"] > 0.9 and t["tar@far=0.01"] > 0.25, t
    thr = load_checkpoint(run / "best.pt")["meta"]["threshold"]
    assert thr["target_far"] == 0.05 and thr["far"] <= 0.05 and -1 < thr["verify"] < thr["match"] < 1
    assert t["at_threshold"]["far"] < 0.1  # calibrated on val people, it holds on the unseen test people
    assert t["at_threshold"]["threshold"] == thr["match"]
    assert (run / "roc.png").stat().st_size > 1000
    model, meta = load_embedder(run / "best.pt")
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        e = model(x)
    assert e.shape == (2, 64) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    assert len(embedder_id(model)) == 16


def test_eval_prints_the_same_metrics(embed_run):
    from click.testing import CliRunner

    from edgecv.cli import cli

    r = CliRunner().invoke(cli, ["eval", str(embed_run[0]), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    m, saved = json.loads(r.output)["test"], json.loads((embed_run[0] / "metrics.json").read_text())["test"]
    for key in ("tar@far=0.01", "tar@far=0.001", "auc", "identify_top1", "genuine_pairs", "impostor_pairs"):
        assert m[key] == pytest.approx(saved[key], abs=1e-6), key


def test_pk_batches_hold_several_images_of_each_identity():
    labels = np.repeat(np.arange(10), 3)
    batches = pk_batches(labels, 16, 4, np.random.default_rng(0))
    assert len(batches) == len(labels) // 16
    for b in batches:
        counts = np.bincount(labels[b])
        assert len(b) == 16 and set(counts[counts > 0]) == {4}


@pytest.mark.parametrize("kind", ["arcface", "triplet", "arcface+triplet"])
def test_losses_fall_when_embeddings_separate_identities(kind):
    torch.manual_seed(0)
    labels = torch.arange(4).repeat_interleave(4)
    loss = EmbedLoss(kind, 4, 8, margin=28.6, scale=30, triplet_margin=0.2)
    mixed = torch.randn(16, 8)
    separated = torch.eye(8)[labels] * 5 + 0.01 * torch.randn(16, 8)
    if loss.arcface is not None:  # class centres that agree with the separated embeddings
        with torch.no_grad():
            loss.arcface.W.copy_(torch.eye(8)[:, :4])
    with torch.no_grad():
        assert float(loss(separated, labels)[0]) < float(loss(mixed, labels)[0])
