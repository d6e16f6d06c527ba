"""Verification metrics on constructed similarities with known answers."""

import numpy as np
import pytest

from edgecv.evaluate.embed import (
    calibrate_threshold,
    identify_top1,
    pair_scores,
    tar_at_far,
    template_scores,
    threshold_at_far,
    verification_report,
)


def test_pair_scores_split_genuine_and_impostor_pairs():
    emb = np.float32([[1, 0], [1, 0], [0, 1], [0.6, 0.8]])
    gen, imp = pair_scores(emb, np.array([0, 0, 1, 1]))
    assert sorted(gen.round(3)) == [0.8, 1.0]  # (0,1) and (2,3)
    assert sorted(imp.round(3)) == [0.0, 0.0, 0.6, 0.6]


def test_threshold_at_far_allows_exactly_that_share_of_impostors():
    imp = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    thr = threshold_at_far(imp, 0.01)
    assert np.sum(imp >= thr) == 10 and thr > 0.989
    assert threshold_at_far(imp, 1e-4) > imp.max()  # fewer than 1/far impostors: above the best one
    gen = np.array([0.5, 0.995, 0.999, 1.0])
    tar, t = tar_at_far(gen, imp, 0.01)
    assert t == thr and tar == 0.75


def test_identify_top1_uses_first_image_per_identity_as_gallery():
    emb = np.float32([[1, 0], [0, 1], [0.9, 0.1], [0.2, 0.8], [0.1, 0.9]])
    labels = np.array([0, 1, 0, 0, 1])  # probes 2 -> 0 (right), 3 -> 1 (wrong), 4 -> 1 (right)
    assert identify_top1(emb, labels) == pytest.approx(2 / 3)


def test_report_and_calibration_on_separable_embeddings():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 32))
    labels = np.repeat(np.arange(20), 5)
    emb = centres[labels] + 0.05 * rng.normal(size=(100, 32))
    r = verification_report(emb, labels, threshold=0.9)
    assert r["genuine_pairs"] == 20 * 10 and r["impostor_pairs"] == 4950 - 200
    assert r["tar@far=0.01"] == 1.0 and r["auc"] == 1.0 and r["identify_top1"] == 1.0
    assert r["at_threshold"]["tar"] == 1.0 and r["at_threshold"]["far"] == 0.0
    cal = calibrate_threshold(emb, labels, 1e-2)
    assert cal["far"] <= 1e-2 and cal["tar"] == 1.0 and cal["far_resolved"]
    assert cal["verify_far"] <= 1e-2 and cal["verify_tar"] == 1.0
    _, imp = pair_scores(emb, labels)  # the track gate: the 1:1 threshold at ten times the FAR (at most 0.1)
    assert cal["track_gate"] <= cal["verify"] and np.mean(imp >= cal["track_gate"]) <= 0.1 and cal["track_gate_tar"] == 1.0
    assert cal["scores"]["genuine"] == 20 * 2 and cal["scores"]["impostor"] == 40 * 19  # 3-shot templates, 2 probes


def test_template_scores_compare_probes_with_shot_means():
    emb = np.float32([[1, 0], [1, 0], [0, 1], [0, 1], [0.8, 0.6], [0.6, 0.8]])
    labels = np.array([0, 0, 1, 1, 0, 1])  # first 2 shots enrol each person, the third is the probe
    gen, imp = template_scores(emb, labels, shots=2)
    np.testing.assert_allclose(sorted(gen), [0.8, 0.8])  # probe 4 vs [1,0]; probe 5 vs [0,1]
    np.testing.assert_allclose(sorted(imp), [0.6, 0.6])
