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
