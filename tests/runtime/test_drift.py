"""The drift monitor fires on a brightness-shifted clip and stays quiet on the original."""

import cv2
import numpy as np

from edgecv.runtime.drift import DriftMonitor, build_reference, frame_stats


def clip(shapes_dir, gain: float = 1.0, n: int = 150):
    """A clip of the sample's scenes in a random order (as a camera sees them), optionally darkened."""
    files = sorted(shapes_dir.rglob("*.jpg"))
    order = np.random.default_rng(0).integers(0, len(files), n)
    frames = [cv2.imread(str(files[i])) for i in order]
    return [np.clip(f.astype(np.float32) * gain, 0, 255).astype(np.uint8) for f in frames]


def run(monitor, frames):
    events = []
    for i, f in enumerate(frames):
        events += monitor.observe(f, confidence=0.9 + 0.001 * (i % 10))
    return events


def test_brightness_shift_fires_a_drift_event_naming_brightness(shapes_dir, tmp_path):
    files = sorted(shapes_dir.rglob("*.jpg"))
    ref_frames = [cv2.imread(str(f)) for f in files]
    reference = build_reference({**frame_stats(f), "confidence": 0.9 + 0.001 * (i % 10)} for i, f in enumerate(ref_frames))
    assert set(reference["stats"]) == {"brightness", "contrast", "red", "green", "blue", "confidence"}

    quiet = run(DriftMonitor(reference, window=120, every=10), clip(shapes_dir))
    assert quiet == []
    monitor = DriftMonitor(reference, window=120, every=10, capture_dir=tmp_path / "cap", capture_every_s=0)
    shifted = run(monitor, clip(shapes_dir, gain=0.4))
    drifted = {e["statistic"] for e in shifted if e["event"] == "drift"}
    assert "brightness" in drifted and all(e["psi"] > 0.25 for e in shifted)
    assert monitor.captured > 0 and len(list((tmp_path / "cap").glob("*.jpg"))) == monitor.captured
