"""Detector export: decoded boxes + scores in the graph, torch = ONNX = TFLite on the same input, int8 artifacts
with mAP50 in their report; and `edgecv run` on them with torch blocked."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import write_video
from tests.runtime.test_pipeline import run_torch_blocked


def test_torch_onnx_and_tflite_outputs_agree(det_run, det_export):
    """The published fp32 artifacts give torch's boxes and scores on the same input."""
    import torch

    from edgecv.export.run import load_run_model
    from edgecv.runtime.backends import create_backend
    from edgecv.runtime.preprocess import prepare_input

    model, _, meta = load_run_model(det_run[0])
    rgb = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    with torch.no_grad():
        ref = [t.numpy() for t in model(torch.from_numpy(prepare_input(rgb, meta))[None])]
    for name in ("model_fp32.onnx", "model_fp32.tflite"):
        with create_backend(det_export[0] / name, threads=1) as backend:
            boxes, scores = backend.infer(prepare_input(rgb, backend.meta)[None])
        assert boxes.shape == ref[0].shape == (1, 16 * 16 + 8 * 8 + 4 * 4, 4) and scores.shape == ref[1].shape
        np.testing.assert_allclose(boxes, ref[0], atol=1e-2, rtol=1e-4)  # pixels
        np.testing.assert_allclose(scores, ref[1], atol=1e-4)


def test_int8_artifacts_carry_map50_and_the_decoder(det_export):
    import onnx

    out, output = det_export
    report = json.loads((out / "export_report.json").read_text())
    rows = {r["file"]: r for r in report["artifacts"]}
    assert set(rows) >= {"model_fp32.onnx", "model_int8.onnx", "model_fp32.tflite", "model_int8.tflite"}
    assert all(r["metric"] == "map50" and 0 <= r["value"] <= 1 for r in rows.values())
    proto = onnx.load(str(out / "model_int8.onnx"))
    assert [o.name for o in proto.graph.output] == ["boxes", "scores"]
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["edgecv"])
    assert meta["task"] == "detect" and meta["resize"] == "letterbox" and meta["decoder"]["outputs"] == ["boxes", "scores"]
    assert meta["fidelity"]["metric"] == "map50"


@pytest.mark.parametrize("model", ["model_int8.onnx", "model_int8.tflite"])
def test_run_detector_on_a_video_with_torch_blocked(det_export, det_data, tmp_path, model):
    out, _ = det_export
    frames = [cv2.resize(cv2.imread(str(p)), (192, 144)) for p in sorted((det_data / "images").glob("*.jpg"))[:12]]
    video = write_video(tmp_path / "clip.avi", frames)
    # unrelated images, not one scene: nothing to track (and the tiny model's scores, ~0.02 after its few epochs of
    # quality focal loss, which asks a box's score to be its IoU, start no track)
    proc = run_torch_blocked(out / model, video, tmp_path, "--conf", "0.01", "--no-track")
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    results = [e for e in events if e["event"] == "result"]
    assert len(results) == 12 and all(e["task"] == "detect" for e in results)
    boxes = [d for e in results for d in e["boxes"]]
    assert boxes, "no detection above 0.01 in 12 frames"
    for d in boxes:  # frame pixels, not the 128 px letterbox, and clipped to the 192 x 144 frame
        x1, y1, x2, y2 = d["xyxy"]
        assert 0 <= x1 < x2 <= 192 and 0 <= y1 < y2 <= 144
    assert cv2.VideoCapture(str(tmp_path / "out.mp4")).read()[0]


def test_nms_in_graph_keeps_what_per_class_nms_keeps(det_run, det_export):
    import torch
    import torchvision

    from edgecv.artifact import read_meta
    from edgecv.runtime.backends import create_backend
    from edgecv.runtime.postprocess.detect import detect_postprocess
    from edgecv.runtime.preprocess import prepare_frame

    out, _ = det_export  # exported with --nms-in-graph: every ONNX file also with NMS in its graph
    report = json.loads((out / "export_report.json").read_text())
    rows = {x["file"]: x for x in report["artifacts"]}
    for name in ("model_fp32_nms.onnx", "model_int8_nms.onnx"):
        assert rows[name]["nms_in_graph"] and rows[name]["metric"] == "map50" and 0 <= rows[name]["value"] <= 1
    meta = read_meta(out / "model_fp32_nms.onnx")
    nms = meta.decoder.nms_in_graph
    assert meta.decoder.outputs == ("boxes", "scores", "selected") and nms.iou == 0.45

    backend = create_backend(out / "model_fp32_nms.onnx")
    image = sorted(Path(json.loads((det_run[0] / "split.json").read_text())["root"]).rglob("*.jpg"))[0]
    x, tf = prepare_frame(cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB), backend.meta)
    boxes, scores, selected = backend.infer(x[None])
    # ONNX NonMaxSuppression is per class: every (box, class) pair over the threshold competes within its class
    box_i, cls_i = np.nonzero(scores[0] > nms.conf)
    keep = torchvision.ops.batched_nms(
        torch.from_numpy(boxes[0][box_i]), torch.from_numpy(scores[0][box_i, cls_i]), torch.from_numpy(cls_i), nms.iou
    ).numpy()
    expected = {(int(c), int(b)) for b, c in zip(box_i[keep], cls_i[keep])}
    per_class = {
        c: sorted(((b for cc, b in expected if cc == c)), key=lambda b: -scores[0][b, c])[: nms.max_per_class]
        for c in {c for c, _ in expected}
    }
    assert {(int(c), int(b)) for _, c, b in selected} == {(c, b) for c, bs in per_class.items() for b in bs}
    dets = detect_postprocess([boxes, scores, selected], backend.meta, conf=0.0, transform=tf)
    assert len(dets) == min(len(selected), 300) and np.all(np.diff(dets.scores) <= 0)


def brightness_detector(path: Path) -> Path:
    """A real ONNX detector artifact whose behaviour is known: the input (64 px) cut into 8x8 cells, each cell's
    mean brightness -> a sigmoid score for the one class 'blob', each cell's box 24 px around its centre (so NMS
    keeps one box per bright object and a box that moves one cell overlaps its last position by IoU 0.5)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgecv.artifact import ArtifactMeta, DetectDecoder, DetectThresholds, set_onnx_meta

    centres = (np.arange(8) * 8 + 4).astype(np.float32)
    cy, cx = np.meshgrid(centres, centres, indexing="ij")
    boxes = np.stack([cx - 12, cy - 12, cx + 12, cy + 12], -1).reshape(1, 64, 4).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["x"], ["cells"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("ReduceMean", ["cells", "axis1"], ["gray"], keepdims=1),
        helper.make_node("Reshape", ["gray", "shape"], ["flat"]),
        helper.make_node("Sub", ["flat", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["scores"]),
        helper.make_node("Identity", ["grid"], ["boxes"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([1, 64, 1], np.int64), "shape"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array(20.0, np.float32), "gain"),
        numpy_helper.from_array(boxes, "grid"),
    ]
    graph = helper.make_graph(
        nodes,
        "blobs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 64, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 64, 1]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    meta = ArtifactMeta(
        task="detect",
        labels=["blob"],
        input_size=(64, 64),
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
        resize="letterbox",
        decoder=DetectDecoder("ltrb-points", ("boxes", "scores"), None, strides=(8,)),
        thresholds=DetectThresholds(conf=0.25, iou=0.45, track=0.6),
    )
    set_onnx_meta(model, meta)
    onnx.save(model, str(path))
    return path


def test_run_tracks_moving_objects_with_ids_that_last(tmp_path):
    model = brightness_detector(tmp_path / "blobs.onnx")
    frames = []
    for t in range(30):  # two white squares on black, one moving right, one moving down, 2 px (1 input px) a frame
        img = np.zeros((128, 128, 3), np.uint8)
        img[16:32, 8 + 2 * t : 24 + 2 * t] = 255
        img[40 + 2 * t : 56 + 2 * t, 96:112] = 255
        frames.append(img)
    video = write_video(tmp_path / "blobs.avi", frames)
    proc = run_torch_blocked(model, video, tmp_path, "--conf", "0.5")
    assert proc.returncode == 0 and "tracking (ByteTrack: objects from score 0.5" in proc.stderr, proc.stderr[-3000:]
    results = [e for e in map(json.loads, (tmp_path / "events.jsonl").read_text().splitlines()) if e["event"] == "result"]
    ids = [sorted(b["track_id"] for b in e["boxes"]) for e in results]
    assert len(results) == 30 and all(isinstance(i, int) and i >= 1 for frame in ids for i in frame)
    assert sum(frame == [1, 2] for frame in ids) >= 27, ids  # two objects, the same two ids all along
    telemetry = json.loads((tmp_path / "events.telemetry.json").read_text())
    assert telemetry["tracks"]["confirmed"] == 2
    proc = run_torch_blocked(model, video, tmp_path, "--conf", "0.5", "--no-track")
    results = [e for e in map(json.loads, (tmp_path / "events.jsonl").read_text().splitlines()) if e["event"] == "result"]
    assert proc.returncode == 0 and not any("track_id" in b for e in results for b in e["boxes"])
    # untracked, the frames where a square straddles two cells (score ~0.5, at --conf) lose it; the tracker kept
    # those through its low-score association
    untracked = sum(len(e["boxes"]) == 2 for e in results)
    assert 20 <= untracked < sum(frame == [1, 2] for frame in ids)
