import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecv.cli import cli
from edgecv.devices import devices_dir, list_devices, load_device
from edgecv.errors import RecipeError
from edgecv.runtime.pipeline import PipelineSpec, apply_device


def test_every_profile_loads_and_is_named_after_its_file():
    names = list_devices()
    assert {"raspberry-pi-4", "raspberry-pi-5", "jetson-nano", "jetson-orin-nano", "x86-cpu"} <= set(names)
    for name in names:
        p = load_device(name)
        assert p.name == name and p.export.formats and p.latency_budget_ms > 0
    out = CliRunner().invoke(cli, ["devices"]).output
    assert all(name in out for name in names)
    profiles = json.loads(CliRunner().invoke(cli, ["devices", "--json"]).output)
    assert [d["name"] for d in profiles] == list(names) and all(d["export"]["formats"] for d in profiles)


def test_a_malformed_profile_names_the_file_and_the_field(tmp_path):
    text = (devices_dir() / "x86-cpu.yaml").read_text().replace("backend: onnxruntime", "backend: openvino")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(
        RecipeError,
        match=r"bad.yaml: runtime.backend: Input should be 'onnxruntime', 'litert' or "
        r"'tensorrt' \(got 'openvino'\)",
    ):
        load_device(str(bad))
    with pytest.raises(RecipeError, match="unknown device 'pi9'; known: jetson-nano"):
        load_device("pi9")


def test_export_takes_formats_and_precisions_from_the_profile(monkeypatch, tiny_run):
    from edgecv.export import run as export_module

    seen = {}

    def fake_export(run, spec, data=None):
        seen["spec"] = spec
        return export_module.ExportResult(out_dir=Path(run), report=Path(run) / "export_report.json")

    monkeypatch.setattr(export_module, "export_run", fake_export)
    r = CliRunner().invoke(cli, ["export", str(tiny_run), "--device", "raspberry-pi-4"])
    assert r.exit_code == 0, r.output
    assert "device raspberry-pi-4: tflite +int8" in r.output
    assert seen["spec"].targets() == [("tflite", "fp32"), ("tflite", "int8")]
    CliRunner().invoke(cli, ["export", str(tiny_run), "--device", "raspberry-pi-4", "--format", "onnx"])
    assert seen["spec"].targets() == [("onnx", "fp32"), ("onnx", "int8")]  # an explicit option wins


def test_run_takes_threads_providers_and_camera_from_the_profile():
    spec = apply_device(PipelineSpec(model="m.onnx", source=""), "jetson-orin-nano")
    assert spec.source == "csi://0" and spec.threads == 5
    assert dict(spec.backend_options)["preferred_providers"][0] == "TensorrtExecutionProvider"
    spec = apply_device(PipelineSpec(model="m.tflite", source="clip.avi", threads=1), "raspberry-pi-4")
    assert spec.source == "clip.avi" and spec.threads == 1 and dict(spec.backend_options) == {"xnnpack": True}


def test_profile_backend_options_load_and_agree(tiny_export):
    from edgecv.runtime.backends import create_backend

    out, _ = tiny_export
    x = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype(np.float32)
    a = create_backend(out / "model_fp32.tflite", xnnpack=True)
    b = create_backend(out / "model_fp32.tflite", xnnpack=False)
    assert b.providers == ["builtin kernels"]
    np.testing.assert_allclose(a.infer(x)[0], b.infer(x)[0], atol=1e-4)
    ort = create_backend(out / "model_fp32.onnx", preferred_providers=("TensorrtExecutionProvider", "CPUExecutionProvider"))
    assert ort.providers == ["CPUExecutionProvider"]
