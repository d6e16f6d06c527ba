"""The CLI: README command 1's edgecv steps run for real (shrunk), errors are one line, --help works."""

import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgecv.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SHRINK = {
    "sample": ["--per-class", "8", "--size", "72"],
    "sample video": ["--frames", "12"],
    "train": ["--epochs", "1", "--set", "data.input_size=64", "--set", "train.workers=0"],
    "eval": [],
    "export": ["--calib-images", "16", "--threads", "1"],
    "run": ["--max-frames", "12", "--threads", "1"],
}


def quickstart_commands() -> list[list[str]]:
    lines = (ROOT / "scripts" / "quickstart.sh").read_text().splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("edgecv ")]


def test_readme_runs_the_scripts_and_ci_runs_command_2():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/quickstart.sh" in readme and "bash scripts/test.sh" in readme
    assert readme.index("bash scripts/quickstart.sh") < readme.index("bash scripts/test.sh")
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    for line in (ROOT / "scripts" / "quickstart.sh").read_text().splitlines():
        if line.startswith("edgecv "):
            assert line in readme, f"README does not show the quickstart's `{line}`"
    assert [c[0] for c in quickstart_commands()] == ["sample", "train", "eval", "export", "sample", "run"]


def test_quickstart_edgecv_commands(tmp_path, monkeypatch):
    """The quickstart's own edgecv lines, with only their sizes shrunk so the test takes seconds."""
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    outputs = []
    for args in quickstart_commands():
        shrink = SHRINK[" ".join(args[:2])] if args[:2] == ["sample", "video"] else SHRINK[args[0]]
        r = runner.invoke(cli, args + shrink, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        outputs.append(r.output)
    assert "wrote 48 images in 6 classes" in outputs[0]
    assert "test top-1:" in outputs[1] and "test (tta) top-1:" in outputs[2]
    assert (tmp_path / "runs" / "sample" / "eval_tta.json").is_file()
    assert "model_int8.tflite" in outputs[3] and (tmp_path / "runs" / "sample" / "export" / "export_report.json").is_file()
    assert "wrote 12 frames" in outputs[4] and "frames 12" in outputs[5]
    assert (tmp_path / "runs" / "sample" / "run.webm").is_file() and (tmp_path / "runs" / "sample" / "events.jsonl").is_file()
    assert (tmp_path / "runs" / "sample" / "events.telemetry.json").is_file()  # the README names all three


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {root: d}\ntrain: {batch_size: -1}\n")
    r = CliRunner().invoke(cli, ["train", str(bad)])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"edgecv: error: {bad}: train.batch_size: Input should be greater than or equal to 1 (got -1)"
    ]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["train"],
        ["eval"],
        ["export"],
        ["run"],
        ["bench"],
        ["inspect"],
        ["devices"],
        ["sample"],
        ["sample", "classify"],
        ["sample", "video"],
    ],
)
def test_help_everywhere(args):
    r = CliRunner().invoke(cli, args + ["--help"], prog_name="edgecv")
    assert r.exit_code == 0 and "Usage: edgecv" in r.output


FACE_SHRINK = {
    "sample faces": ["--identities", "40", "--per-identity", "4"],
    "train": ["--epochs", "2", "--set", "data.input_size=64", "--set", "train.workers=0"],
    "export": ["--format", "onnx", "--calib-images", "16", "--threads", "1", "--max-drop", "100"],
    "sample face-demo": [],
    "run": ["--max-frames", "8", "--threads", "1"],
}


def readme_block(heading: str) -> list[list[str]]:
    """The `edgecv` lines of the first code block after ``heading`` in the README."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index(heading) :].split("```text", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("  #")[0])[1:] for line in block.splitlines() if line.startswith("edgecv ")]


def test_readme_face_commands_run_shrunk(tmp_path, monkeypatch):
    """Every command of the README's face section, in order, on a shrunk sample (globs expanded as a shell would)."""
    import glob

    monkeypatch.chdir(tmp_path)
    commands = readme_block("## Face recognition")
    assert [c[0] for c in commands] == ["sample", "train", "eval", "export", "sample", "enroll", "gallery", "run"]
    runner = CliRunner()
    for argv in commands:
        argv = [str(ROOT / a) if a.startswith("recipes/") else a for a in argv]
        argv = [x for a in argv for x in (sorted(glob.glob(a)) if "*" in a else [a])]
        key = " ".join(argv[:2]) if argv[0] == "sample" else argv[0]
        r = runner.invoke(cli, argv + FACE_SHRINK.get(key, []), catch_exceptions=False)
        assert r.exit_code == 0, (argv, r.output)
    assert "alice" in runner.invoke(cli, ["gallery", "list", "--gallery", "faces.db"]).output
    events = (tmp_path / "faces.jsonl").read_text().splitlines()
    assert sum('"event": "result"' in e for e in events) == 8


def test_a_moved_run_evaluates_exports_and_benches_from_another_folder(tiny_run, shapes_dir, tmp_path, monkeypatch):
    """A run copied elsewhere with its data finds the data beside it; data moved on its own is one error line (and
    nothing overwritten) until --data says where it went."""
    import json

    from edgecv.data.splits import Split

    home = tmp_path / "home"
    shutil.copytree(tiny_run, home / "run", ignore=shutil.ignore_patterns("export", "cache"))
    shutil.copytree(shapes_dir, home / "data")
    Split.load(home / "run" / "split.json", data=home / "data").save(home / "run" / "split.json")  # trained at home
    shutil.move(home, tmp_path / "moved")
    run, elsewhere = tmp_path / "moved" / "run", tmp_path / "elsewhere"
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    before = json.loads((run / "metrics.json").read_text())["test"]["top1"]
    ok = CliRunner().invoke(cli, ["eval", str(run), "--json"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["test"]["top1"] == before

    shutil.move(tmp_path / "moved" / "data", elsewhere)
    written = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    for args in (["eval", str(run)], ["export", str(run), "--format", "onnx", "--out", "x"], ["bench", str(run)]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1 and "the run's dataset is not at" in r.output
        assert "pass --data DIR" in r.output, r.output
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == written and not Path("x").exists()

    r = CliRunner().invoke(cli, ["eval", str(run), "--data", str(elsewhere), "--json"], catch_exceptions=False)
    assert r.exit_code == 0 and json.loads(r.output)["test"]["top1"] == before
    r = CliRunner().invoke(
        cli,
        ["export", str(run), "--format", "onnx", "--threads", "1", "--out", "x", "--data", str(elsewhere)],
        catch_exceptions=False,
    )
    assert r.exit_code == 0 and Path("x/model_fp32.onnx").is_file(), r.output
    r = CliRunner().invoke(cli, ["bench", "x", "--run", str(run), "--data", str(elsewhere)], catch_exceptions=False)
    assert r.exit_code == 0 and "model_fp32.onnx" in r.output, r.output


def test_eval_writes_one_file_per_split_and_mode(tiny_run, tmp_path):
    """`eval --split val --tta` does not replace the test split's TTA metrics (nor train's metrics.json)."""
    import json

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export", "cache"))
    metrics = (run / "metrics.json").read_bytes()
    for args in ([], ["--tta"], ["--split", "val"], ["--split", "val", "--tta"]):
        r = CliRunner().invoke(cli, ["eval", str(run), *args], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    written = {
        name: json.loads((run / name).read_text())
        for name in ("eval.json", "eval_tta.json", "eval_val.json", "eval_val_tta.json")
    }
    assert [(("test" in m), m["tta"]) for m in written.values()] == [(True, False), (True, True), (False, False), (False, True)]
    for png in ("confusion_matrix.png", "confusion_matrix_tta.png", "confusion_matrix_val.png", "confusion_matrix_val_tta.png"):
        assert (run / png).is_file(), png
    assert (run / "metrics.json").read_bytes() == metrics
