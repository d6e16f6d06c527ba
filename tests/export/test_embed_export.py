"""Embedder export: TAR@FAR of every artifact against torch fp32 on the unseen test people, the int8 drop, each
artifact's own threshold calibrated on val pairs, and one embedder id across precisions."""

import json

from edgecv.artifact import read_meta


def test_embedder_export_reports_tar_at_far_and_its_int8_drop(embed_export):
    out, r = embed_export
    assert r.exit_code == 0, r.output
    report = json.loads((out / "export_report.json").read_text())
    rows = {a["file"]: a for a in report["artifacts"]}
    assert set(rows) == {"model_fp32.onnx", "model_int8.onnx", "model_fp32.tflite", "model_int8.tflite"}
    fp32 = rows["model_fp32.onnx"]
    assert fp32["metric"] == "tar@far=0.01" and abs(fp32["drop_points"]) < 0.5  # ONNX fp32 == torch
    for name in ("model_int8.onnx", "model_int8.tflite"):
        row = rows[name]
        # the point estimate: within two of the test split's 90 genuine pairs (1.1 points each; its interval is +-9)
        assert row["gate"]["passed"] and row["drop_points"] <= 2.3, row
        ci = row["drop_ci95"]
        assert ci["low"] <= row["drop_points"] <= ci["high"] and ci["draws"] == 500  # the bound the gate judged
        assert row["agreement_all"]["n"] == 1200 and 0 < row["agreement_all"]["value"] <= 1  # every image of the run
        assert 0 < row["top1_agreement"] <= 1  # nearest-neighbour agreement with torch
        at = row["at_threshold"]
        assert at["impostor"] > 500 and 0 <= at["far"] <= 0.1 and at["shots"] == 3
    ids = set()
    for name, row in rows.items():
        meta = read_meta(out / name)
        assert meta.task == "embed" and meta.decoder.dim == 64 and meta.drift is None
        assert meta.thresholds.match == row["threshold"]["match"]  # this artifact's own calibrated threshold
        assert meta.thresholds.track_gate == row["threshold"]["track_gate"] <= meta.thresholds.verify
        assert meta.fidelity["value"] == row["value"]
        ids.add(meta.decoder.embedder_id)
    assert len(ids) == 1  # fp32 and int8 artifacts share one embedder id: one gallery serves them all
