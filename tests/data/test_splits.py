import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest

from edgecv.data.imagefolder import UnreadableImage, read_rgb, scan_imagefolder
from edgecv.data.splits import Split, make_split, stratified_split
from edgecv.errors import EdgecvError


def test_split_is_deterministic_stratified_and_disjoint():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    a = stratified_split(labels, test=0.2, val=0.1, seed=7)
    b = stratified_split(labels, test=0.2, val=0.1, seed=7)
    c = stratified_split(labels, test=0.2, val=0.1, seed=8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    # exactly 20% / 10% of every class, and no index in two splits
    assert np.bincount(labels[a["test"]]).tolist() == [2, 4, 6, 8]
    assert np.bincount(labels[a["val"]]).tolist() == [1, 2, 3, 4]
    everything = np.concatenate([a["train"], a["val"], a["test"]])
    assert sorted(everything.tolist()) == list(range(len(labels)))


def test_tiny_class_still_gets_a_test_image():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    s = stratified_split(labels, test=0.1, val=0.1, seed=0)
    assert set(labels[s["test"]].tolist()) == {0, 1}
    assert set(labels[s["train"]].tolist()) == {0, 1}


def _folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            cv2.imwrite(str(tmp_path / cls / f"{i}.png"), rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
    return tmp_path


def test_corrupt_images_are_skipped_counted_and_listed(tmp_path):
    root = _folder(tmp_path)
    (root / "a" / "empty.jpg").write_bytes(b"")
    (root / "a" / "text.png").write_text("not an image")
    good = cv2.imencode(".jpg", np.zeros((50, 50, 3), np.uint8))[1].tobytes()
    (root / "b" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    split = make_split(root, test=0.2, val=0.2, seed=0)
    skipped = {s["file"]: s["reason"] for s in split.skipped}
    assert set(skipped) == {"a/empty.jpg", "a/text.png", "b/truncated.jpg"}
    assert skipped["a/empty.jpg"] == "empty file"
    listed = sum(split.files.values(), [])
    assert len(listed) == 12 and not set(listed) & set(skipped)
    split.save(tmp_path / "split.json")
    assert dataclasses.replace(Split.load(tmp_path / "split.json"), root_rel=None) == split
    assert json.loads((tmp_path / "split.json").read_text())["skipped"][0]["file"] == "a/empty.jpg"


def test_gray_rgba_and_16bit_are_converted(tmp_path):
    gray = np.full((8, 9), 100, np.uint8)
    rgba = np.zeros((8, 9, 4), np.uint8)
    rgba[..., 0] = 255  # blue in OpenCV's BGRA order
    deep = np.full((8, 9, 3), 65535, np.uint16)
    for name, img in (("g.png", gray), ("c.png", rgba), ("d.png", deep)):
        cv2.imwrite(str(tmp_path / name), img)
    g, c, d = (read_rgb(tmp_path / n) for n in ("g.png", "c.png", "d.png"))
    assert g.shape == c.shape == d.shape == (8, 9, 3) and g.dtype == c.dtype == d.dtype == np.uint8
    assert (g == 100).all()
    assert c[0, 0].tolist() == [0, 0, 255]  # RGB: blue
    assert (d == 255).all()
    with pytest.raises(UnreadableImage):
        read_rgb(tmp_path / "missing.png")


def test_imagefolder_errors(tmp_path):
    with pytest.raises(EdgecvError, match="dataset folder not found"):
        scan_imagefolder(tmp_path / "nope")
    (tmp_path / "only").mkdir()
    with pytest.raises(EdgecvError, match="at least 2 class subfolders"):
        scan_imagefolder(tmp_path)
    (tmp_path / "x").mkdir()
    root = _folder(tmp_path / "x")
    with pytest.raises(EdgecvError, match=r"not among the trained classes \['a'\]"):
        scan_imagefolder(root, classes=("a",))


def test_a_split_finds_its_data_where_it_was_relative_to_the_run_or_where_told(tmp_path, monkeypatch):
    (tmp_path / "a" / "data").mkdir(parents=True)
    root = _folder(tmp_path / "a" / "data")
    split = make_split(root, test=0.2, val=0.2, seed=0)
    (tmp_path / "a" / "run").mkdir()
    split.save(tmp_path / "a" / "run" / "split.json")
    rec = json.loads((tmp_path / "a" / "run" / "split.json").read_text())
    assert rec["root"] == str(root.resolve()) and rec["root_rel"] == "../data"
    monkeypatch.chdir(tmp_path)  # relative or absolute, what is read is the same
    assert Split.load("a/run/split.json").files == split.files
    shutil.move(tmp_path / "a", tmp_path / "b")  # run and data moved together: found beside the run
    assert Split.load(tmp_path / "b" / "run" / "split.json").root == str(tmp_path / "b" / "run" / "../data")
    shutil.move(tmp_path / "b" / "data", tmp_path / "elsewhere")  # data moved on its own: one line, and --data
    with pytest.raises(
        EdgecvError,
        match=r"dataset is not at .*/a/data nor .*b/run/../data \(no such folder\); "
        r"pass --data DIR",
    ):
        Split.load(tmp_path / "b" / "run" / "split.json")
    assert Split.load(tmp_path / "b" / "run" / "split.json", data=tmp_path / "elsewhere").root == str(tmp_path / "elsewhere")
    (tmp_path / "wrong").mkdir()
    with pytest.raises(EdgecvError, match=r"--data .*wrong: it has no [ab]/"):
        Split.load(tmp_path / "b" / "run" / "split.json", data=tmp_path / "wrong")
