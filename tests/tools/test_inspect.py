import json

import pytest
from click.testing import CliRunner

from edgecv.cli import cli
from edgecv.tools.inspect import inspect_onnx, inspect_torch


def test_mobilenet_v2_macs_match_the_published_300m_and_params_exactly():
    import torchvision

    r = inspect_torch(torchvision.models.mobilenet_v2(), (1, 3, 224, 224))
    assert r.params == 3_504_872  # torchvision's published count
    assert abs(r.macs - 300e6) / 300e6 < 0.05  # the paper's 300M multiply-adds
    kinds = r.macs_by_kind()
    assert kinds["pointwise"] > 10 * kinds["depthwise"] > 0  # depthwise-separable: the 1x1 convs carry the cost
    # the largest (input + output) pair: 112x112x96 expansion output after 112x112x16... in float32
    assert 4 < r.peak_inference_bytes() / 2**20 < 20


def test_onnx_and_torch_counts_agree_on_the_same_model(tiny_run, tiny_export):
    from edgecv.models.loading import load_classifier

    model, meta = load_classifier(tiny_run / "best.pt")
    t = inspect_torch(model, (1, 3, meta.input_size, meta.input_size))
    o = inspect_onnx(tiny_export[0] / "model_fp32.onnx")
    q = inspect_onnx(tiny_export[0] / "model_int8.onnx")  # weights reach the convs through DequantizeLinear
    assert o.macs == pytest.approx(t.macs, rel=0.01) and q.macs == pytest.approx(t.macs, rel=0.01)
    assert o.macs_by_kind()["depthwise"] == pytest.approx(t.macs_by_kind()["depthwise"], rel=0.01)


def test_cli_prints_mb_for_a_backbone_and_json_for_onnx(tiny_export):
    r = CliRunner().invoke(cli, ["inspect", "mobilenetv2_100"])
    assert r.exit_code == 0, r.output
    assert "parameters: 3,504,872" in r.output and "MB" in r.output and "MACs: 300.8 M" in r.output
    r = CliRunner().invoke(cli, ["inspect", str(tiny_export[0] / "model_int8.onnx"), "--json"])
    data = json.loads(r.output)
    assert data["macs"] > 0 and data["peak_inference_activation_mb"] > 0


def test_tflite_macs_match_onnx_and_every_artifact_shows_its_metadata_and_fidelity(tiny_export):
    from edgecv.tools.inspect import inspect_tflite

    out = tiny_export[0]
    o = inspect_onnx(out / "model_fp32.onnx")
    for name in ("model_fp32.tflite", "model_int8.tflite", "model_fp16.tflite"):
        t = inspect_tflite(out / name)  # the same network, counted from LiteRT's op table
        assert t.macs == pytest.approx(o.macs, rel=0.02), name
        assert t.macs_by_kind()["depthwise"] == pytest.approx(o.macs_by_kind()["depthwise"], rel=0.02), name
    from edgecv.artifact import read_meta

    for artifact in sorted(out.glob("model_*")):
        row = read_meta(artifact).fidelity  # the artifact's own row (the folder's report may be a later attempt's)
        r = CliRunner().invoke(cli, ["inspect", str(artifact)])
        assert r.exit_code == 0, r.output
        assert "artifact: classify, 6 label(s)" in r.output and row["precision"] in r.output
        assert f"drop {row['drop_points']:.2f} points [95% " in r.output, r.output
        assert f"all {row['agreement_all']['n']} run images" in r.output
    data = json.loads(CliRunner().invoke(cli, ["inspect", str(out / "model_int8.tflite"), "--json"]).output)
    assert data["macs"] > 0 and data["artifact"]["fidelity"]["gate"]["passed"] is True


def test_inspect_of_any_task_run_and_of_missing_files_is_clear(det_run, embed_run, tmp_path):
    for run in (det_run[0], embed_run[0]):
        r = CliRunner().invoke(cli, ["inspect", str(run)])
        assert r.exit_code == 0 and "MACs:" in r.output, r.output
    for missing in (tmp_path / "nonexist.onnx", tmp_path / "nothing"):
        r = CliRunner().invoke(cli, ["inspect", str(missing)])
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
        assert "no such file" in r.output and "Traceback" not in r.output
    (tmp_path / "notes.txt").write_text("hello")
    r = CliRunner().invoke(cli, ["inspect", str(tmp_path / "notes.txt")])
    assert r.exit_code == 2 and "not a model edgecv inspects" in r.output


def test_an_engine_shows_its_sidecar_metadata_without_tensorrt(tiny_export, tmp_path):
    from edgecv.artifact import read_meta
    from edgecv.artifact.tensorrt import write_engine_sidecar

    engine = tmp_path / "model_int8.engine"
    engine.write_bytes(b"an engine only a GPU reads")
    write_engine_sidecar(engine, read_meta(tiny_export[0] / "model_int8.onnx"), engine.with_suffix(".engine.json"))
    r = CliRunner().invoke(cli, ["inspect", str(engine)])
    assert r.exit_code == 0, r.output
    assert "not counted for TensorRT engines" in r.output and "artifact: classify, 6 label(s)" in r.output
