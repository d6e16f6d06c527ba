"""The roofline's parts: the peak models are real matrix products, the peak is measured once per machine, runtime
and thread count and then read from its cache, and a row's GMAC/s and % of peak follow from its MACs and p50."""

import numpy as np

from edgecv.tools import roofline


def test_the_peak_models_compute_the_matrix_product():
    for precision in ("fp32", "int8"):
        feeds = roofline.gemm_inputs(precision)
        got = roofline.peak_session(precision, 1).run(None, feeds)[0]
        want = feeds["a"].astype(np.int64) @ feeds["b"].astype(np.int64) if precision == "int8" else feeds["a"] @ feeds["b"]
        assert got.shape == (roofline.M, roofline.N)
        if precision == "int8":
            assert np.array_equal(got, want)  # exact: int32 accumulation
        else:
            assert np.allclose(got, want, rtol=1e-3, atol=1e-2)


def test_the_peak_is_measured_once_per_machine_runtime_and_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []
    monkeypatch.setattr(roofline, "measure_peak", lambda p, t, seconds=1.0: calls.append((p, t)) or 10.0 * len(calls))
    first = roofline.machine_peak(1)
    assert calls == [("fp32", 1), ("int8", 1)] and (first["fp32"], first["int8"]) == (10.0, 20.0)
    again = roofline.machine_peak(1)
    assert len(calls) == 2 and again["int8"] == 20.0  # from the cache
    roofline.machine_peak(2)
    assert calls[2:] == [("fp32", 2), ("int8", 2)]  # another thread count is another entry
    assert roofline.machine_peak(1, refresh=True)["fp32"] == 50.0 and len(calls) == 6


def test_a_rows_share_of_the_peak():
    peak = {"fp32": 50.0, "int8": 400.0}
    row = {"p50_ms": 2.0, "precision": "int8", "backend": "onnxruntime"}
    assert roofline.roofline(row, 100_000_000, peak) == {
        "macs": 100_000_000,
        "gmacs": 50.0,
        "peak_gmacs": 400.0,
        "pct_of_peak": 12.5,
    }
    assert roofline.roofline({**row, "precision": "fp16"}, 100_000_000, peak)["pct_of_peak"] == 100.0
    assert roofline.roofline({**row, "backend": "litert"}, 100_000_000, peak)["pct_of_peak"] is None
    assert roofline.roofline(row, None, peak)["gmacs"] is None  # an ONNX on a device without the onnx package
