"""The drift monitor on scenes a fixed camera shows: quiet on one in-distribution scene held still and on a
montage of them, an alarm within seconds when the light halves or the place changes, cleared when it comes back."""

import cv2
import numpy as np
import pytest

from edgecv.runtime.drift import DriftMonitor, build_reference, frame_stats, reference_problem

FPS = 10


@pytest.fixture(scope="module")
def reference_and_tests(shapes_dir):
    files = sorted(shapes_dir.rglob("*.jpg"))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(files))
    train = [cv2.imread(str(files[i])) for i in order[:40]]
    test = [cv2.imread(str(files[i])) for i in order[40:]]
    rows = [{**frame_stats(f), "confidence": c} for f, c in zip(train, rng.uniform(0.6, 1.0, len(train)))]
    return build_reference(rows), test


def camera(image, seconds: float, rng, gain: float = 1.0):
    """A 16:9 camera held on ``image``: small jitter and sensor noise, ``gain`` scales the light."""
    base = cv2.resize(image, (320, 180), interpolation=cv2.INTER_LINEAR).astype(np.float32) * gain
    for _ in range(int(seconds * FPS)):
        dx, dy = rng.integers(-2, 3, 2)
        shifted = np.roll(base, (int(dy), int(dx)), axis=(0, 1))
        yield np.clip(shifted + rng.normal(0, 3, shifted.shape), 0, 255).astype(np.uint8)


def feed(monitor, frames, t0: float = 0.0, conf=lambda i: 0.9):
    events = []
    for i, f in enumerate(frames):
        events += [{**e, "at": t0 + i / FPS} for e in monitor.observe(f, conf(i), t0 + i / FPS)]
    return events, t0 + (i + 1) / FPS


def test_a_still_scene_and_a_montage_of_test_images_raise_nothing(reference_and_tests):
    reference, test = reference_and_tests
    rng = np.random.default_rng(1)
    still, _ = feed(DriftMonitor(reference), camera(test[0], 120, rng))
    assert still == []
    montage = DriftMonitor(reference)
    frames = (f for k in range(60) for f in camera(test[k % 10], 2, rng))  # 10 test images, 2 s each, 2 minutes
    events, _ = feed(montage, frames, conf=lambda i: 0.7 + 0.25 * ((i // 20) % 2))
    assert events == [] and montage.seen == 1200


def test_light_halving_alarms_within_seconds_and_clears_when_it_returns(reference_and_tests):
    reference, test = reference_and_tests
    rng = np.random.default_rng(2)
    monitor = DriftMonitor(reference)
    before, t = feed(monitor, camera(test[3], 60, rng))
    dark, t_back = feed(monitor, camera(test[3], 20, rng, gain=0.5), t0=t)
    after, _ = feed(monitor, camera(test[3], 20, rng), t0=t_back)
    assert before == []
    alarms = [e for e in dark if e["event"] == "drift"]
    assert alarms and alarms[0]["check"] == "site" and alarms[0]["at"] - t <= 10
    assert "brightness" in alarms[0]["statistics"] and alarms[0]["share"] >= 0.8
    cleared = [e for e in after if e["event"] == "drift_cleared" and e["check"] == "site"]
    assert cleared and cleared[0]["at"] - t_back <= 10 and not monitor.drifting


def test_a_scene_unlike_any_training_image_is_training_drift(reference_and_tests):
    reference, _ = reference_and_tests
    rng = np.random.default_rng(3)
    grey = np.full((180, 320, 3), 128, np.uint8)  # flat grey: no training image has ~0 contrast
    events, _ = feed(DriftMonitor(reference), camera(grey, 15, rng))
    training = [e for e in events if e["event"] == "drift" and e["check"] == "training"]
    assert training and training[0]["at"] <= 10 and "contrast" in training[0]["statistics"]


def test_a_change_that_lasts_becomes_the_new_baseline_with_an_event(reference_and_tests):
    reference, test = reference_and_tests
    rng = np.random.default_rng(4)
    monitor = DriftMonitor(reference, warmup_s=10, relearn_after_s=30)
    _, t = feed(monitor, camera(test[5], 15, rng))
    events, t = feed(monitor, camera(test[5], 60, rng, gain=0.5), t0=t)
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["drift", "site_baseline_reset"] and monitor.resets == 1 and not monitor.drifting
    later, _ = feed(monitor, camera(test[5], 30, rng, gain=0.5), t0=t)
    assert later == []  # the darker scene is the site's baseline now


def test_frames_are_captured_while_drifting(reference_and_tests, tmp_path):
    reference, test = reference_and_tests
    rng = np.random.default_rng(5)
    monitor = DriftMonitor(reference, capture_dir=tmp_path / "cap", capture_every_s=0)
    _, t = feed(monitor, camera(test[1], 40, rng))
    feed(monitor, camera(test[1], 10, rng, gain=0.4), t0=t)
    assert monitor.captured > 0 and len(list((tmp_path / "cap").glob("*.jpg"))) == monitor.captured


def test_old_and_missing_references_are_named_not_used():
    old = {"method": "psi", "bins": 10, "n": 100, "stats": {}}
    assert "older edgecv" in reference_problem(old) and "no drift reference" in reference_problem(None)
    with pytest.raises(ValueError, match="older edgecv"):
        DriftMonitor(old)


def test_the_site_check_can_be_left_out_for_cameras_whose_view_keeps_changing(reference_and_tests):
    reference, test = reference_and_tests
    for checks, site_alarms in ((("training", "site"), True), (("training",), False)):
        rng = np.random.default_rng(6)
        monitor = DriftMonitor(reference, checks=checks)
        _, t = feed(monitor, camera(test[3], 40, rng))
        events, _ = feed(monitor, camera(test[3], 15, rng, gain=0.5), t0=t)
        assert any(e["check"] == "site" for e in events) is site_alarms
    with pytest.raises(ValueError, match="choose from training, site"):
        DriftMonitor(reference, checks=("sight",))
