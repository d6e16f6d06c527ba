"""The device install: a wheel of edgecv with only the `runtime` extra, in a fresh venv (no torch, no tensorflow,
no onnx), runs an int8 TFLite artifact over a video, carries the device profiles, nms.onnx and the default face
detector's model."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import skimage.data

from tests.conftest import ROOT


def _sh(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)


def test_runtime_extra_in_a_fresh_venv_runs_tflite(tmp_path, tiny_export, shapes_video):
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    r = _sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, ROOT)
    assert r.returncode == 0, r.stderr
    wheel = next(wheels.glob("edgecv-*.whl"))
    r = _sh(sys.executable, "-m", "venv", "--without-pip", venv)
    assert r.returncode == 0, r.stderr
    py = venv / "bin" / "python"
    r = _sh(sys.executable, "-m", "pip", "--python", py, "install", "-q", f"{wheel}[runtime]")
    assert r.returncode == 0, r.stderr

    missing = _sh(
        py, "-c", "import importlib.util as u; print([m for m in ('torch', 'tensorflow', 'onnx', 'timm') if u.find_spec(m)])"
    )
    assert missing.stdout.strip() == "[]", missing.stdout  # none of them installed

    # the default face detector's model ships in the wheel: BlazeFace back finds the astronaut's face there
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    code = "import cv2, sys; from edgecv.runtime.faces.detect import create_face_detector as c; "
    code += "print(len(c().detect(cv2.imread(sys.argv[1]))))"
    faces = _sh(py, "-c", code, photo, cwd=tmp_path)
    assert faces.returncode == 0 and faces.stdout.strip() == "1", faces.stdout + faces.stderr

    edgecv = venv / "bin" / "edgecv"
    devices = _sh(edgecv, "devices", cwd=tmp_path)  # from the wheel, not the checkout
    assert devices.returncode == 0 and "raspberry-pi-4" in devices.stdout, devices.stderr

    export, _ = tiny_export
    events = tmp_path / "events.jsonl"
    run = _sh(
        edgecv,
        "run",
        export / "model_int8.tflite",
        "--source",
        shapes_video,
        "--device",
        "raspberry-pi-4",
        "--save",
        tmp_path / "out.avi",
        "--events",
        events,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    results = [e for e in rows if e.get("event") == "result"]
    assert len(results) == 36 and all(e["top"][0]["label"] for e in results), rows[:3]
    assert (tmp_path / "out.avi").stat().st_size > 0
