"""Shared fixtures: tiny generated data sets (shapes on real photos, boxes, people), fast recipes over them, and the
runs and exports the tests that only read one share.

The suite runs on pytest-xdist workers (``scripts/test.sh``: ``-n 2``). Each worker is a session of its own, so a
session fixture would be built once per worker; the expensive ones are built ``once`` for the whole run instead.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # workers share the cores: torch's threads divided between them
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))


@dataclass(frozen=True)
class Ran:
    """What a CLI command printed and returned (click's Result cannot travel between workers)."""

    exit_code: int
    output: str


def once(tmp_path_factory, name: str, build):
    """``build(folder)`` run once per test run, its result shared by every xdist worker: the first worker to get
    here builds it in the run's common temp folder while the others wait on a lock, then read its pickled result."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent  # one per run, above each worker's own basetemp
    with FileLock(str(root / f"{name}.lock")):
        done = root / f"{name}.pickle"
        if done.is_file():
            return pickle.loads(done.read_bytes())
        folder = root / name
        folder.mkdir(exist_ok=True)
        value = build(folder)
        done.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    from edgecv.data.samples import write_classify_sample

    return once(tmp_path_factory, "data", lambda tmp: write_classify_sample(tmp / "shapes", per_class=10, size=72, seed=1))


def fast_recipe(path: Path, data: Path, **train) -> Path:
    """A recipe that trains in seconds: 64 px input, few epochs, no worker processes."""
    recipe = {
        "name": "tiny",
        "data": {"root": str(data), "input_size": 64, "split": {"test": 0.2, "val": 0.2, "seed": 0}},
        "model": {"backbone": "efficientnet_lite0", "pretrained": "imagenet"},
        "train": {
            "batch_size": 16,
            "workers": 0,
            "early_stopping": 0,
            "head": {"epochs": 4, "lr": 3e-3, "cache_augmentations": 1},
            "finetune": {"epochs": 1, "unfreeze_blocks": 1, "lr": 1e-4},
            **train,
        },
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture
def tiny_recipe(tmp_path, shapes_dir) -> Path:
    return fast_recipe(tmp_path / "tiny.yaml", shapes_dir)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shapes_dir) -> Path:
    """One finished run of the fast recipe, shared by the tests that only read a run (export, ...)."""
    from edgecv.train.run import train

    return once(
        tmp_path_factory,
        "tiny_run",
        lambda tmp: train(str(fast_recipe(tmp / "tiny.yaml", shapes_dir)), out=str(tmp / "run")).run_dir,
    )


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory):
    """`edgecv export --int8 --fp16` of the tiny run (the CLI's result and the output folder)."""

    def build(out):
        r = edgecv("export", tiny_run, "--int8", "--fp16", "--calib-images", "24", "--threads", "1", "--out", out, ok=False)
        return out, r

    return once(tmp_path_factory, "export", build)


def write_video(path: Path, frames, fps: float = 10.0) -> Path:
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="session")
def shapes_video(shapes_dir, tmp_path_factory) -> Path:
    """A 36-frame MJPEG clip of the sample images (BGR frames, 72x72)."""
    import cv2

    files = sorted(shapes_dir.rglob("*.jpg"))[:36]
    return once(tmp_path_factory, "video", lambda tmp: write_video(tmp / "shapes.avi", [cv2.imread(str(f)) for f in files]))


def detect_recipe(path, data, **train):
    recipe = {
        "name": "dtiny",
        "task": "detect",
        "data": {"root": str(data), "input_size": 128, "split": {"test": 0.25, "val": 0.2, "seed": 0}},
        "model": {"backbone": "efficientnet_lite0", "channels": 32, "head_convs": 1},
        "train": {
            "batch_size": 8,
            "workers": 0,
            "early_stopping": 0,
            "head": {"epochs": 3, "lr": 3e-3, "cache_augmentations": 1},
            "finetune": {"epochs": 1, "unfreeze_blocks": 1, "lr": 1e-4},
            **train,
        },
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="session")
def det_data(tmp_path_factory):
    from edgecv.data.samples import write_detect_sample

    return once(tmp_path_factory, "det", lambda tmp: write_detect_sample(tmp / "data", images=32, size=128, seed=2))


def edgecv(*args, ok: bool = True) -> Ran:
    """`edgecv ARGS` in this process (click's runner); with ``ok``, it must exit 0."""
    from click.testing import CliRunner

    from edgecv.cli import cli

    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert not ok or r.exit_code == 0, r.output
    return Ran(r.exit_code, r.output)


@pytest.fixture(scope="session")
def det_run(det_data, tmp_path_factory):
    """A finished tiny detector run (128 px, 32 images) and the CLI's output."""

    def build(tmp):
        return tmp / "run", edgecv("train", detect_recipe(tmp / "r.yaml", det_data), "--out", tmp / "run").output

    return once(tmp_path_factory, "det_run", build)


@pytest.fixture(scope="session")
def det_export(det_run, tmp_path_factory):
    """int8 ONNX + TFLite of the tiny detector (gate budget wide open: the tiny run is for plumbing, not accuracy),
    each ONNX file also with NMS in its graph."""

    def build(out):
        args = ("--int8", "--nms-in-graph", "--calib-images", "16", "--max-drop", "100", "--threads", "1", "--out", out)
        r = edgecv("export", det_run[0], *args)
        return out, r.output

    return once(tmp_path_factory, "det_export", build)


@pytest.fixture(scope="session")
def face_data(tmp_path_factory) -> Path:
    """Generated people: 240 identities x 5 face chips."""
    from edgecv.data.faces import write_faces_sample

    return once(
        tmp_path_factory, "faces", lambda tmp: write_faces_sample(tmp / "people", identities=240, per_identity=5, seed=11)
    )


def embed_recipe(path: Path, data: Path, **train) -> Path:
    recipe = {
        "name": "etiny",
        "task": "embed",
        "data": {"root": str(data), "input_size": 96, "split": {"test": 0.15, "val": 0.2, "seed": 0}},
        "model": {"backbone": "efficientnet_lite0", "dim": 64},
        "train": {
            "batch_size": 32,
            "workers": 0,
            "early_stopping": 0,
            "loss": "triplet",
            # a 2-person demo gallery: FAR 5% per probe; the tiny model's TAR@FAR=1e-2 is only ~0.4
            "target_far": 0.05,
            "head": {"epochs": 20, "lr": 3e-3, "cache_augmentations": 1},
            **train,
        },
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="session")
def embed_run(face_data, tmp_path_factory):
    """A finished tiny face-embedder run and the CLI's output."""

    def build(tmp):
        return tmp / "run", edgecv("train", embed_recipe(tmp / "r.yaml", face_data), "--out", tmp / "run").output

    return once(tmp_path_factory, "embed_run", build)


@pytest.fixture(scope="session")
def embed_export(embed_run, tmp_path_factory):
    """int8 ONNX + TFLite of the tiny embedder (the CLI's result). Its 36 test people make TAR@FAR=1e-2's paired
    95% interval about +-8 points wide, so the gate, which decides on the interval's upper end, is given 12 points:
    the point drop is checked against the 1-point budget by the test itself."""

    def build(out):
        args = ("export", embed_run[0], "--int8", "--calib-images", "64", "--threads", "1", "--max-drop", "12", "--out", out)
        return out, edgecv(*args, ok=False)

    return once(tmp_path_factory, "embed_export", build)
