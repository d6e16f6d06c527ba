"""`edgecv predict` and the Python API (`edgecv.load(path).predict(image)`) on each task's artifact, torch blocked:
one line (or JSON object) per image, annotated copies that never replace each other, unreadable images skipped
and counted; the README's Python example runs as written."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime.test_pipeline import cli_torch_blocked
from tests.runtime.test_preprocess import BLOCK_TORCH

README = Path(__file__).resolve().parents[1] / "README.md"


def python_torch_blocked(code: str, cwd: Path) -> subprocess.CompletedProcess:
    check = "\nassert 'torch' not in sys.modules and 'tensorflow' not in sys.modules\n"
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + code + check], capture_output=True, text=True, timeout=240, cwd=cwd
    )


@pytest.mark.parametrize("model", ["model_int8.onnx", "model_int8.tflite"])
def test_predict_classifies_images_of_folders_with_one_json_line_each(tiny_export, shapes_dir, tmp_path, model):
    out, _ = tiny_export
    images = tmp_path / "images"
    for kind in ("circle", "star"):  # the same file names in two folders
        (images / kind).mkdir(parents=True)
        for f in sorted((shapes_dir / kind).glob("*.jpg"))[:4]:
            shutil.copy(f, images / kind / f.name)
    (images / "star" / "broken.jpg").write_bytes(b"not an image")
    proc = cli_torch_blocked(
        "predict",
        str(out / model),
        str(images / "circle"),
        str(images / "star"),
        "--json",
        "--topk",
        "2",
        "--save",
        str(tmp_path / "annotated"),
        "--threads",
        "1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 8 and all(r["task"] == "classify" and len(r["top"]) == 2 for r in rows)
    assert "1 of 9 image(s) unreadable, skipped" in proc.stderr
    truth = [Path(r["image"]).parent.name for r in rows]
    assert sum(r["top"][0]["label"] == t for r, t in zip(rows, truth)) >= 5  # training images of a >= 0.5 model
    saved = sorted(p.name for p in (tmp_path / "annotated").glob("*.jpg"))
    assert len(saved) == 8 and saved[0].startswith("circle_") and saved[-1].startswith("star_")
    # the plain form: one line per image, its path and the classes
    proc = cli_torch_blocked("predict", str(out / model), str(images / "circle" / "*.jpg"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 4 and all(re.match(r".*circle/\d+\.jpg: \w+ \d\.\d{3}", line) for line in lines), lines


def test_predict_on_detector_and_face_embedder_artifacts(det_export, det_data, embed_export, tmp_path):
    from edgecv.data.faces import write_face_demo

    det, _ = det_export
    # the tiny detector is for plumbing (its scores are low): --conf 0.01 shows that boxes come through
    proc = cli_torch_blocked(
        "predict", str(det / "model_int8.onnx"), str(det_data / "images"), "--json", "--threads", "1", "--conf", "0.01"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 32 and all(r["task"] == "detect" for r in rows)
    assert sum(len(r["boxes"]) for r in rows) > 0 and all("track_id" not in b for r in rows for b in r["boxes"])

    emb, _ = embed_export
    info = write_face_demo(tmp_path / "demo", frames_per_person=2)
    name = info["enrolled"][0]
    photos = sorted(str(p) for p in (tmp_path / "demo" / "enroll" / name).glob("*.jpg"))
    gallery = str(tmp_path / "faces.db")
    proc = cli_torch_blocked("enroll", "--gallery", gallery, "--model", str(emb / "model_int8.onnx"), "--name", name, *photos)
    accepted = [p for p in photos if f"rejected {p}" not in proc.stdout]
    assert proc.returncode == 0 and accepted, proc.stdout + proc.stderr[-2000:]
    proc = cli_torch_blocked("predict", str(emb / "model_int8.onnx"), *accepted, "--gallery", gallery, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(accepted) and all(r["task"] == "embed" for r in rows)
    assert all(any(f["name"] == name for f in r["faces"]) for r in rows), rows  # the photos they were enrolled from
    # an option of another task is refused, as on `edgecv run`
    proc = cli_torch_blocked("predict", str(emb / "model_int8.onnx"), accepted[0], "--topk", "3")
    assert proc.returncode == 2 and "--topk does not apply" in proc.stderr


def test_the_readmes_python_example_runs_as_written(tiny_export, tiny_run, shapes_dir, tmp_path):
    """The ```python block of README's "Python API" section, in a folder laid out as the quickstart leaves it."""
    text = README.read_text()
    section = text[text.index("the Python API\n") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "runs" / "sample").mkdir(parents=True)
    shutil.copytree(tiny_export[0], tmp_path / "runs" / "sample" / "export")
    shutil.copytree(shapes_dir, tmp_path / "data" / "shapes")
    proc = python_torch_blocked("import sys\n" + code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = proc.stdout.splitlines()[:2]
    assert re.fullmatch(r"\w+ [01]\.\d+", first) and second.startswith("classify int8 "), proc.stdout  # "circle 0.93"


def test_python_api_train_and_export_are_the_commands(tiny_run, tmp_path):
    import edgecv

    result = edgecv.export(tiny_run, formats=["onnx"], threads=1, out=tmp_path / "x")
    assert [r["file"] for r in result.rows] == ["model_fp32.onnx"] and (tmp_path / "x" / "model_fp32.onnx").is_file()
    model = edgecv.load(tmp_path / "x" / "model_fp32.onnx", topk=1)
    assert model.meta.task == "classify" and model.meta.labels == json.loads((tiny_run / "split.json").read_text())["classes"]
    with pytest.raises(edgecv.errors.EdgecvError, match="unknown option"):
        edgecv.export(tiny_run, format="onnx")
    with pytest.raises(edgecv.errors.EdgecvError, match="unknown option"):
        edgecv.load(tmp_path / "x" / "model_fp32.onnx", top_k=1)
    assert callable(edgecv.train)
