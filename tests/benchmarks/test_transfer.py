"""The README's benchmark command runs (shrunk to seconds); its figures come from the full run."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_transfer_benchmark_prints_both_inits_and_the_cache_ratio():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "transfer.py"), "--per-class", "6", "--input-size", "64", "--epochs", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert re.search(r"ImageNet \(offline\)\s+[01]\.\d{4}", out) and re.search(r"random init\s+[01]\.\d{4}", out)
    ratio = re.search(r"-> (\d+)x faster cached", out)
    assert ratio and int(ratio.group(1)) >= 1, out
