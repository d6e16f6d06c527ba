"""The face gallery's commands (edgecv/cli_faces.py), through the main `edgecv` group: errors are one line with
exit code 2 there too. The README's face block runs in tests/test_cli.py; enrol and verify in
tests/runtime/faces/test_face_pipeline.py."""

from click.testing import CliRunner

from edgecv.cli import cli


def test_gallery_rename_and_remove_from_the_cli(tmp_path):
    import numpy as np

    from edgecv.runtime.faces.gallery import Gallery

    db = tmp_path / "g.db"
    with Gallery(db, create=True) as g:
        g.enroll("ann", [np.zeros((8, 8, 3), np.uint8)], np.ones((1, 4)))
    runner = CliRunner()
    assert runner.invoke(cli, ["gallery", "rename", "--gallery", str(db), "ann", "anna"]).exit_code == 0
    r = runner.invoke(cli, ["gallery", "remove", "--gallery", str(db), "ann"])
    assert r.exit_code == 2 and "no identity named 'ann'" in r.output
    assert runner.invoke(cli, ["gallery", "remove", "--gallery", str(db), "anna"]).exit_code == 0
    assert "0 identities" in runner.invoke(cli, ["gallery", "list", "--gallery", str(db)]).output


def test_gallery_calibrate_from_the_cli_prints_the_threshold_and_warns_when_the_far_is_not_measurable(tmp_path):
    import numpy as np

    from edgecv.runtime.faces.gallery import Gallery, l2_normalize

    rng = np.random.default_rng(0)
    db = tmp_path / "g.db"
    with Gallery(db, create=True) as g:
        for k in range(5):
            g.enroll(f"p{k}", [np.zeros((8, 8, 3), np.uint8)] * 3, l2_normalize(rng.normal(size=(3, 8))))
    r = CliRunner().invoke(cli, ["gallery", "calibrate", "--gallery", str(db), "--target-far", "1e-3"])
    assert r.exit_code == 0, r.output
    assert "match threshold" in r.output and "60 impostor scores among 5 people" in r.output
    assert "warning: 60 impostor scores cannot measure FAR 0.001 (at least 1000 needed" in r.output
    ok = CliRunner().invoke(cli, ["gallery", "calibrate", "--gallery", str(db), "--target-far", "0.05"])
    assert ok.exit_code == 0 and "warning" not in ok.output
