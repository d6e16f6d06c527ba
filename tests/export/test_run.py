"""`edgecv export` on a finished run: five artifacts, each self-describing and runnable without torch,
the report inside every artifact and in export_report.json, and nothing half-written on failure."""

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgecv.cli import cli
from edgecv.export import run as export_module
from edgecv.export.gate import GateResult
from edgecv.export.run import export_run
from edgecv.export.spec import ExportSpec
from tests.runtime.test_preprocess import BLOCK_TORCH

FILES = ["model_fp32.onnx", "model_int8.onnx", "model_fp32.tflite", "model_fp16.tflite", "model_int8.tflite"]


@pytest.fixture
def exported(tiny_export, tmp_path):
    """A copy of the shared export: these tests export into it again, while other tests (other workers) read the
    shared one."""
    out, r = tiny_export
    return shutil.copytree(out, tmp_path / "export"), r


def test_cli_builds_every_artifact_with_a_table_and_a_report(exported):
    out, r = exported
    assert r.exit_code == 0, r.output
    assert "note: onnx: no fp16 artifact" in r.output
    report = json.loads((out / "export_report.json").read_text())
    assert [row["file"] for row in report["artifacts"]] == FILES
    for row in report["artifacts"]:
        assert row["published"] and (out / row["file"]).is_file()
        assert row["file"] in r.output  # one table line per artifact
        assert row["n"] == report["reference"]["n"] > 0
        if row["precision"] != "fp32":
            assert row["gate"]["passed"] and row["drop_points"] <= 1.0
    assert report["calibration"]["images"] == 24 and len(report["calibration"]["hash"]) == 16
    assert not list(out.glob(".staging*")) and not list(out.glob(".*.tmp*"))
    rows = {row["file"]: row for row in report["artifacts"]}
    for fmt, fastest in report["fastest"].items():  # the quickest published artifact of each format, said so
        same = [row for row in rows.values() if row["format"] == fmt]
        assert fastest["latency_p50_ms"] == min(row["latency_p50_ms"] for row in same)
        assert f"fastest {fmt} here: {fastest['file']}" in r.output
    assert set(report["fastest"]) == {"onnx", "tflite"}


def test_the_fastest_artifact_is_the_quickest_published_one():
    from edgecv.export.fidelity import fastest_per_format, format_fastest

    def row(file, ms, published=True, nms=False):
        fmt = file.rsplit(".", 1)[1]
        return dict(
            file=file, format=fmt, precision=file[6:10], latency_p50_ms=ms, threads=1, published=published, nms_in_graph=nms
        )

    rows = [
        row("model_fp32.onnx", 10.0),
        row("model_int8.onnx", 12.5),  # int8 slower than fp32: a CPU without VNNI
        row("model_fp32_nms.onnx", 9.0, nms=True),  # another graph, not a precision choice
        row("model_fp32.tflite", 20.0),
        row("model_int8.tflite", 5.0, published=False),  # refused by the gate
    ]
    fastest = fastest_per_format(rows)
    assert fastest == {
        "onnx": {
            "file": "model_fp32.onnx",
            "precision": "fp32",
            "latency_p50_ms": 10.0,
            "threads": 1,
            "relative_time": {"model_int8.onnx": 1.25},
        }
    }
    assert format_fastest(fastest) == [
        "fastest onnx here: model_fp32.onnx (10.00 ms p50, 1 thread(s)); model_int8.onnx takes 1.25x as long"
    ]


def test_every_artifact_runs_with_torch_blocked_and_carries_its_report(exported):
    out, _ = exported
    report = {row["file"]: row for row in json.loads((out / "export_report.json").read_text())["artifacts"]}
    code = (
        BLOCK_TORCH
        + f"""
import json, sys
from pathlib import Path
import numpy as np
from edgecv.runtime.backends import create_backend
from edgecv.runtime.preprocess import prepare_input
rgb = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
rows = {{}}
for name in {FILES!r}:
    b = create_backend(Path({str(out)!r}) / name, threads=1)
    y = b.infer(prepare_input(rgb, b.meta)[None])[0]
    m = b.meta
    rows[name] = dict(shape=list(y.shape), layout=m.layout, precision=m.precision, labels=m.labels,
                      calib=m.calibration_hash, value=m.fidelity["value"], drop=m.fidelity["drop_points"])
assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules
print(json.dumps(rows))
"""
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, row in rows.items():
        labels = row["labels"]
        assert row["shape"] == [1, len(labels)] and len(labels) == 6
        assert row["layout"] == ("NCHW" if name.endswith(".onnx") else "NHWC")
        assert row["precision"] == name.split("_")[1].split(".")[0]
        assert (row["calib"] is not None) == (row["precision"] == "int8")
        assert (row["value"], row["drop"]) == (report[name]["value"], report[name]["drop_points"])


def test_a_failed_export_leaves_the_previous_artifacts_intact(exported, tiny_run, monkeypatch):
    out, _ = exported
    before = {p.name: p.read_bytes() for p in out.glob("model_*")}

    def broken(*args, **kwargs):
        raise RuntimeError("fidelity measurement crashed half way")

    monkeypatch.setattr(export_module, "measure", broken)
    with pytest.raises(RuntimeError, match="half way"):
        export_run(tiny_run, ExportSpec(formats=("onnx",), out=out))
    assert {p.name: p.read_bytes() for p in out.glob("model_*")} == before
    assert not list(out.glob(".staging*"))


def test_gate_failure_keeps_fp32_and_the_previous_int8_and_says_so(exported, tiny_run, monkeypatch):
    out, _ = exported
    previous = (out / "model_int8.onnx").read_bytes()

    def never(build, evaluate, ranking, max_drop, max_float=16, name=None):
        row = evaluate(build(()))
        row = {**row, "drop_points": 42.0}
        return GateResult(None, row, (), [{"float_layers": ["head"], "drop_points": 42.0, "value": 0.0}])

    monkeypatch.setattr(export_module, "recover", never)
    r = CliRunner().invoke(
        cli, ["export", str(tiny_run), "--format", "onnx", "--int8", "--calib-images", "8", "--threads", "1", "--out", str(out)]
    )
    assert r.exit_code == 1
    assert (
        "edgecv: error: model_int8.onnx: top1 drops 42.00 points (95% bound 42.00 > 1.0) even with 1 layer(s) "
        "kept in float; not written"
    ) in r.output
    assert (out / "model_int8.onnx").read_bytes() == previous and (out / "model_fp32.onnx").is_file()
    report = json.loads((out / "export_report.json").read_text())
    assert [a["published"] for a in report["artifacts"]] == [True, False] and report["failures"]


def test_the_drift_reference_is_measured_on_raw_frames_as_the_device_measures_them():
    """A 16:9 frame: the reference's statistics are the device's ``frame_stats`` of the frame itself (not of a
    letterboxed input), and its confidence is the model's top softmax through the device's ``prepare_frame``."""
    import numpy as np
    import torch

    from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
    from edgecv.runtime.drift import DriftMonitor, frame_stats
    from edgecv.runtime.preprocess import prepare_frame

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (90, 160, 3), np.uint8) // (k + 1) for k in range(6)]
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)
    ).eval()
    meta = ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=list("abc"),
        input_size=(32, 32),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
    )
    ref = export_module.drift_reference(net, meta, frames)
    brightness = [frame_stats(f, "BGR")["brightness"] for f in frames]
    assert ref["quantiles"]["brightness"][0] == pytest.approx(min(brightness), abs=1e-6)
    assert ref["quantiles"]["brightness"][4] == pytest.approx(max(brightness), abs=1e-6)
    with torch.no_grad():
        conf = [float(torch.softmax(net(torch.from_numpy(prepare_frame(f, meta, "BGR")[0][None])), 1).max()) for f in frames]
    assert ref["quantiles"]["confidence"][4] == pytest.approx(max(conf), abs=1e-5)
    monitor = DriftMonitor(ref)  # what the device does with it
    assert monitor.vector(frames[0], conf[0])[0] == pytest.approx(brightness[0])


def _snapshot(out):
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_ctrl_c_during_conversion_leaves_the_previous_set(exported, tiny_run, monkeypatch):
    out, _ = exported
    before = _snapshot(out)
    build = export_module._Exporter.build
    calls = []

    def interrupted(self, fmt, precision, keep=()):
        calls.append(fmt)
        if len(calls) == 2:  # the first artifact is finished, the second is being converted
            raise KeyboardInterrupt
        return build(self, fmt, precision, keep)

    monkeypatch.setattr(export_module._Exporter, "build", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_run(tiny_run, ExportSpec(formats=("onnx", "tflite"), out=out))
    assert _snapshot(out) == before  # byte for byte, and no staging or backup folder left


def test_ctrl_c_during_publication_puts_the_previous_set_back(exported, tiny_run, monkeypatch):
    """A real SIGINT in the middle of moving the new files in: the swap is undone, then the export is interrupted."""
    import os
    import signal

    out, _ = exported
    before, handler = _snapshot(out), signal.getsignal(signal.SIGINT)  # SIG_IGN in a shell's background job
    replace, moves = os.replace, []

    def replace_then_sigint(src, dst):
        replace(src, dst)
        if ".previous." in str(src) or ".previous." in str(dst) or "ready" in str(src):
            moves.append(dst)
            if len(moves) == 3:  # both old files set aside, the first new one in place
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", replace_then_sigint)
    with pytest.raises(KeyboardInterrupt):
        export_run(tiny_run, ExportSpec(formats=("onnx",), out=out))
    monkeypatch.undo()
    assert len(moves) >= 3 and _snapshot(out) == before
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C does what it did before (default_int_handler in a terminal)
