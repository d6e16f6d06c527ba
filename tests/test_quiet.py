"""Quiet by default: what the frameworks print (C++ on descriptor 2, Python warnings, their loggers, their progress
bars) goes to RUN/logs/*.log; edgecv's own lines and progress bars stay on the terminal; --verbose shows all."""

import subprocess
import sys

import pytest

NOISY = """
import logging, os, sys, warnings
from edgecv._quiet import progress, third_party_log
logging.basicConfig(level=logging.INFO, format="edgecv: %(message)s")
with third_party_log(sys.argv[1], verbose=sys.argv[2] == "1"):
    os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on\\n")  # C++, straight to the descriptor
    print("W1203 torch/utils/_pytree.py:630] deprecated", file=sys.stderr)  # Python code writing to sys.stderr
    warnings.warn("a framework's deprecation")
    logging.getLogger("absl").warning("absl says so")
    logging.getLogger("edgecv").info("converting model_int8.tflite")
    list(progress(range(3), desc="calibrating", disable=False))
logging.getLogger("edgecv").info("after")
"""
THIRD_PARTY = ("oneDNN", "_pytree", "deprecation", "absl says")


@pytest.mark.parametrize("verbose", [False, True])
def test_other_libraries_output_goes_to_the_log_unless_verbose(tmp_path, verbose):
    log = tmp_path / "logs" / "export.log"
    proc = subprocess.run(
        [sys.executable, "-c", NOISY, str(log), "1" if verbose else "0"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    for line in ("edgecv: converting model_int8.tflite", "calibrating", "edgecv: after"):
        assert line in proc.stderr
    for noise in THIRD_PARTY:
        assert (noise in proc.stderr) == verbose
        assert (noise in (log.read_text() if log.exists() else "")) != verbose


def test_the_export_shows_only_edgecvs_lines(tiny_run, tmp_path):
    """The README's export (shrunk to one TFLite conversion, which wakes absl, TensorFlow Lite's converter,
    XNNPACK and torch.export's warnings): stderr holds edgecv's lines only, the log the rest."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgecv.cli",
            "export",
            str(tiny_run),
            "--format",
            "tflite",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("edgecv: ") for line in lines), lines
    log = (tiny_run / "logs" / "export.log").read_text()
    assert "XNNPACK" in log or "flatbuffer_export" in log
    assert f"the converters' own output: {tiny_run / 'logs' / 'export.log'}" in proc.stdout
