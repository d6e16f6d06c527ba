"""`edgecv import`: models from elsewhere (ONNX in the YOLOv8/11 and end-to-end layouts, a softmax classifier, a face
embedder) become edgecv artifacts whose decoding matches a reference written from the layout's definition, whose
fidelity rows and int8 gate work on the user's --data, and which `edgecv run` runs with torch blocked."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecv.artifact import read_meta
from edgecv.export.fidelity import detect_eval_set, measure, run_backend
from edgecv.runtime.backends import create_backend
from edgecv.runtime.postprocess import get_postprocess
from edgecv.runtime.preprocess import prepare_frame
from edgecv.tasks import get_task
from tests.conftest import edgecv
from tests.export.onnx_layouts import (
    hostile_classifier,
    reference_e2e,
    reference_yolo,
    softmax_classifier,
    yolo_e2e_layout,
    yolo_layout,
)
from tests.runtime.test_pipeline import cli_torch_blocked
from tests.test_cli import readme_block

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SHAPES = ["circle", "cross", "ring", "square", "star", "triangle"]  # the detector sample's classes, in its order
README = readme_block("## Bring your own model")  # the README's commands, run here on the models these tests build


def readme(i: int, tmp_path: Path, files: dict[str, Path], *extra) -> list[str]:
    """README command ``i`` with its example file names replaced by ``files`` and its outputs under ``tmp_path``."""
    argv = [str(files.get(a, tmp_path / a if a.startswith("imported/") else a)) for a in README[i]]
    return [*argv, *map(str, extra)]


@pytest.fixture(scope="module")
def yolo_models(det_export, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("yolo")
    src = det_export[0] / "model_fp32.onnx"
    return (
        yolo_layout(src, tmp / "yolo11n.onnx", SHAPES),
        yolo_e2e_layout(src, tmp / "yolo26n.onnx", SHAPES),
        yolo_layout(src, tmp / "nameless.onnx", None),
    )


def test_yolo_layouts_decode_as_their_definitions_say(yolo_models, det_export, det_data, tmp_path):
    yolo, e2e, _ = yolo_models
    edgecv("import", yolo, "--task", "detect", "--out", tmp_path / "y")
    edgecv("import", e2e, "--task", "detect", "--out", tmp_path / "e")
    post = get_postprocess("detect")
    ours = create_backend(det_export[0] / "model_fp32.onnx", threads=1)
    with (
        create_backend(tmp_path / "y" / "model_fp32.onnx", threads=1) as by,
        create_backend(tmp_path / "e" / "model_fp32.onnx", threads=1) as be,
    ):
        assert by.meta.labels == SHAPES and by.meta.decoder.type == "yolo" and by.meta.resize == "letterbox"
        assert be.meta.decoder.type == "yolo-e2e"
        checked = 0
        for frame in [cv2.imread(str(p)) for p in sorted((det_data / "images").glob("*.jpg"))[:6]]:
            x, tf = prepare_frame(frame, by.meta, "BGR")
            raw_y, raw_e = by.infer(x[None]), be.infer(x[None])
            opts = post.options(conf=0.01, iou=0.45)
            dy, de = post(raw_y, by.meta, opts), post(raw_e, be.meta, opts)
            want_y, want_e = reference_yolo(raw_y[0][0], 0.01, 0.45), reference_e2e(raw_e[0][0], 0.01)
            assert [(c, round(s, 5)) for c, s, _ in want_y] == [
                (int(c), round(float(s), 5)) for c, s in zip(dy.class_ids, dy.scores)
            ]
            assert np.allclose([b for *_, b in want_y] or np.zeros((0, 4)), dy.xyxy, atol=1e-3)
            assert [(c, round(s, 5)) for c, s, _ in want_e] == [
                (int(c), round(float(s), 5)) for c, s in zip(de.class_ids, de.scores)
            ]
            # the same graph in edgecv's own layout gives the same boxes, mapped to the same frame pixels
            mine = post(ours.infer(x[None]), ours.meta, opts, tf)
            assert np.allclose(post(raw_y, by.meta, opts, tf).xyxy, mine.xyxy, atol=1e-3)
            checked += len(dy) + len(de)
        assert checked > 0  # a test that compares empty lists proves nothing
    ours.close()


def test_yolo_imports_quantize_through_the_gate_and_run_torch_free(yolo_models, det_export, det_data, tmp_path):
    yolo, e2e, _ = yolo_models
    assert [c[0] for c in README] == ["import", "import", "run", "import", "import"]
    with create_backend(det_export[0] / "model_fp32.onnx") as b:  # the normalisation the detector was trained with
        norm = ("--mean", ",".join(map(str, b.meta.mean)), "--std", ",".join(map(str, b.meta.std)))
    files = {"yolo11n.onnx": yolo, "yolo26n.onnx": e2e, "my_coco_set": det_data}
    for i, name in ((0, "yolo11n"), (1, "yolo26n")):
        r = edgecv(*readme(i, tmp_path, files, *norm, "--calib-images", "16", "--max-drop", "100", "--threads", "1"))
        assert "model_int8.onnx" in r.output and "pass" in r.output
        report = json.loads((tmp_path / "imported" / name / "import_report.json").read_text())
        assert report["decoder"]["type"] == ("yolo" if name == "yolo11n" else "yolo-e2e")
        fp32, int8 = report["artifacts"]
        assert fp32["metric"] == int8["metric"] == "map50" and fp32["drop_points"] == 0
        assert int8["gate"]["passed"] and int8["gate"]["decoder_float_nodes"] > 0
        assert not set(report["split"]["test"]) & set(report["split"]["calibration"])
        shown = edgecv("inspect", tmp_path / "imported" / name / "model_int8.onnx").output
        assert f"importing {name}.onnx" in shown and "fidelity (test split" in shown
        if name == "yolo11n":  # the same graph in edgecv's own layout scores the same mAP on the same test images
            from edgecv.data.detection import load_detection

            test = report["split"]["test"]
            es = detect_eval_set("test", load_detection(det_data), test, [0] * len(test), (128, 128))
            ours = det_export[0] / "model_fp32.onnx"
            row = measure(ours, es, run_backend(ours, es.images)[0], get_task("detect").fidelity_metric())
            assert row["value"] == pytest.approx(fp32["value"])
    proc = cli_torch_blocked(*readme(2, tmp_path, {}, "--max-frames", "20", "--events", tmp_path / "ev.jsonl", "--threads", "1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "frames 20" in proc.stdout
    # tracked from the score Ultralytics' own trackers take (an edgecv detector's artifact says 0.6)
    assert "tracking (ByteTrack: objects from score 0.25, new tracks from 0.35" in proc.stderr, proc.stderr[-2000:]
    assert read_meta(det_export[0] / "model_int8.onnx").thresholds.track == 0.6
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert sum(e.get("event") == "result" for e in events) == 20
    e2e_run = cli_torch_blocked(
        "run",
        str(tmp_path / "imported" / "yolo26n" / "model_int8.onnx"),
        "--source",
        str(VTEST),
        "--max-frames",
        "5",
        "--threads",
        "1",
    )
    assert e2e_run.returncode == 0 and "frames 5" in e2e_run.stdout, e2e_run.stderr[-2000:]


def test_import_itself_needs_no_torch(yolo_models, tmp_path):
    proc = cli_torch_blocked("import", str(yolo_models[0]), "--task", "detect", "--out", str(tmp_path / "y"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "y" / "model_fp32.onnx").is_file()


def test_a_softmax_classifier_keeps_its_probabilities(tiny_export, tiny_run, shapes_dir, tmp_path):
    from edgecv.runtime.api import load

    probs_model = softmax_classifier(tiny_export[0] / "model_fp32.onnx", tmp_path / "keras.onnx")
    classes = json.loads((tiny_run / "split.json").read_text())["classes"]
    (tmp_path / "labels.txt").write_text("\n".join(classes))
    files = {"classifier.onnx": probs_model, "labels.txt": tmp_path / "labels.txt", "my_imagefolder": shapes_dir}
    r = edgecv(*readme(3, tmp_path, files, "--threads", "1"))
    assert "decoder probabilities" in r.output
    out = tmp_path / "imported" / "classifier"
    report = json.loads((out / "import_report.json").read_text())
    assert report["artifacts"][0]["metric"] == "top1" and report["artifacts"][0]["n"] == len(report["split"]["test"])
    import onnxruntime as ort

    session = ort.InferenceSession(str(probs_model), providers=["CPUExecutionProvider"])
    model = load(out / "model_fp32.onnx")
    image = cv2.imread(str(shapes_dir / report["split"]["test"][0]))
    x, _ = prepare_frame(image, model.meta, "BGR")
    want = session.run(None, {session.get_inputs()[0].name: x[None]})[0][0]
    got = model.predict(image)
    assert np.allclose(got.probs, want, atol=1e-5)  # not a softmax of the probabilities
    assert got.labels[0] == classes[int(want.argmax())]


def _red_blue(root: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    for name, bgr in (("red", (40, 40, 200)), ("blue", (200, 40, 40))):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = np.clip(np.float32(bgr) + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i:03d}.png"), img)
    return root


def test_the_gate_repairs_a_hostile_model_and_refuses_one_it_cannot(tmp_path):
    data = _red_blue(tmp_path / "colours")
    (tmp_path / "labels.txt").write_text("red\nblue\n")
    common = (
        "--task",
        "classify",
        "--labels",
        tmp_path / "labels.txt",
        "--data",
        data,
        "--int8",
        "--preset",
        "raw",
        "--calib-images",
        "16",
        "--threads",
        "1",
    )
    # one spoilt layer: int8 collapses it, the measured ranking finds it first and keeping it float repairs the model
    one = hostile_classifier(tmp_path / "one.onnx", hostile=1)
    edgecv("import", one, *common, "--out", tmp_path / "one")
    row = json.loads((tmp_path / "one" / "import_report.json").read_text())["artifacts"][1]
    first, last = row["gate"]["attempts"][0], row["gate"]["attempts"][-1]
    assert first["drop_points"] > 30 and row["gate"]["passed"] and row["gate"]["float_layers"][0] == "gemm0"
    assert last["drop_points"] <= 1
    # twenty: 16 float layers still leave four that erase the colour: refused, the folder as it was plus the fp32
    out = tmp_path / "all"
    out.mkdir()
    (out / "model_int8.onnx").write_bytes(b"the previous artifact")
    r = edgecv("import", hostile_classifier(tmp_path / "all.onnx", hostile=20), *common, "--out", out, ok=False)
    assert r.exit_code == 1 and "not written" in r.output
    assert (out / "model_int8.onnx").read_bytes() == b"the previous artifact" and (out / "model_fp32.onnx").is_file()


def test_an_imported_embedder_is_calibrated_on_people_it_holds_out(embed_export, face_data, tmp_path):
    import onnx

    from edgecv.export.fidelity import load_eval_set
    from tests.export.onnx_layouts import _strip

    src = tmp_path / "arcface.onnx"
    onnx.save(_strip(onnx.load(str(embed_export[0] / "model_fp32.onnx"))), str(src))
    # the README's command; this embedder was trained on imagenet-normalised chips, and its 240 people give no
    # FAR of 1e-3 on 168 calibration people's 1:K scores, so it is calibrated at 1e-2
    edgecv(
        *readme(
            4,
            tmp_path,
            {"arcface.onnx": src, "my_people": face_data},
            "--preset",
            "imagenet",
            "--target-far",
            "0.01",
            "--test-fraction",
            "0.3",
            "--threads",
            "1",
        )
    )
    out = tmp_path / "imported" / "arcface"
    report = json.loads((out / "import_report.json").read_text())
    people = {s: {f.split("/")[0] for f in report["split"][s]} for s in ("test", "calibration")}
    assert people["test"] and people["calibration"] and not people["test"] & people["calibration"]
    with create_backend(out / "model_fp32.onnx", threads=1) as b:
        t = b.meta.thresholds
        assert b.meta.decoder.type == "embedding" and t.target_far == 0.01 and None not in (t.match, t.verify)
        from edgecv.evaluate.embed import calibrate_threshold
        from edgecv.runtime.faces.gallery import l2_normalize

        labels = [f.split("/")[0] for f in report["split"]["calibration"]]
        ids = {p: i for i, p in enumerate(sorted(set(labels)))}
        es = load_eval_set("cal", face_data, report["split"]["calibration"], [ids[p] for p in labels], b.meta.input_size)
        emb = l2_normalize(run_backend(out / "model_fp32.onnx", es.images, backend=b)[0][0])
        assert t.match == pytest.approx(calibrate_threshold(emb, es.labels, 0.01)["match"])


@pytest.mark.parametrize(
    "args, says",
    [
        (("--task", "detect"), "has no class names in its metadata; pass --labels FILE"),
        (("--task", "detect", "--labels", "L3"), "is not the YOLO layout [1, 4 + 3 classes, N]"),
        (("--task", "detect", "--int8"), "--int8 needs --data"),
        (("--task", "embed"), "pass --data DIR"),
    ],
)
def test_what_is_missing_or_wrong_is_one_line(yolo_models, tmp_path, args, says):
    (tmp_path / "L3").write_text("a\nb\nc\n")
    args = tuple(str(tmp_path / a) if a == "L3" else a for a in args)
    r = edgecv("import", yolo_models[2], *args, "--out", tmp_path / "o", ok=False)
    assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output


def test_an_edgecv_artifact_and_a_tflite_to_requantize_are_refused(det_export, tmp_path):
    r = edgecv("import", det_export[0] / "model_fp32.onnx", "--task", "detect", "--out", tmp_path / "o", ok=False)
    assert r.exit_code == 2 and "is an edgecv artifact already" in r.output
    r = edgecv(
        "import",
        det_export[0] / "model_fp32.tflite",
        "--task",
        "detect",
        "--data",
        tmp_path,
        "--int8",
        "--out",
        tmp_path / "o",
        ok=False,
    )
    assert r.exit_code == 2 and "cannot be re-quantized" in r.output
