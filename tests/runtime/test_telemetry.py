"""Telemetry stays flat on a run of months: means over the whole run, percentiles over a bounded window."""

import pytest

from edgecv.runtime.telemetry import WINDOW, Telemetry


def test_telemetry_keeps_a_bounded_window_and_exact_whole_run_means():
    tel = Telemetry()
    n = WINDOW * 3
    for i in range(n):
        tel.add("infer", 1.0 if i < WINDOW * 2 else 4.0)
        tel.frame_done()
    s = tel.summary()["stages"]["infer"]
    assert s["n"] == n and s["mean_ms"] == pytest.approx(2.0)  # the whole run
    assert s["p50_ms"] == 4.0  # the last WINDOW frames only
    assert len(tel._ms["infer"]) == WINDOW
