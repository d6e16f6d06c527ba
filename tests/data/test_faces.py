"""Identity-disjoint splits and the generated people."""

import json

import cv2
import numpy as np
import pytest

from edgecv.data.faces import identity_split, write_face_demo, write_faces_sample
from edgecv.errors import EdgecvError


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    return write_faces_sample(tmp_path_factory.mktemp("faces") / "people", identities=12, per_identity=3, seed=1)


def test_sample_writes_face_chips_per_identity(people):
    folders = sorted(p for p in people.iterdir())
    assert len(folders) == 12 and all(len(list(f.glob("*.png"))) == 3 for f in folders)
    assert cv2.imread(str(next(folders[0].glob("*.png")))).shape == (128, 128, 3)


def test_identity_split_is_disjoint_seeded_and_skips_thin_identities(people, tmp_path):
    (people / "person_000" / "000.png").write_bytes(b"not an image")
    for f in list((people / "person_001").glob("*.png"))[1:]:
        f.unlink()
    s = identity_split(people, test=0.2, val=0.2, seed=3, min_images=2)
    ids = {k: set(v) for k, v in s.labels.items()}
    assert not (ids["train"] & ids["test"]) and not (ids["train"] & ids["val"]) and not (ids["val"] & ids["test"])
    assert len(ids["test"]) == 2 and len(ids["val"]) == 2 and len(ids["train"]) == 7  # person_001 left out
    reasons = {d["file"]: d["reason"] for d in s.skipped}
    assert "person_000/000.png" in reasons and "1 readable image" in reasons["person_001/"]
    assert identity_split(people, 0.2, 0.2, 3).files == s.files  # seeded
    assert identity_split(people, 0.2, 0.2, 4).files != s.files
    with pytest.raises(EdgecvError, match="too few"):
        identity_split(people, test=0.5, val=0.4, seed=0)


def test_face_demo_has_enrolment_photos_and_a_video_with_the_truth(tmp_path):
    info = write_face_demo(tmp_path / "demo", frames_per_person=2, photos_per_person=2)
    assert info == json.loads((tmp_path / "demo" / "truth.json").read_text())
    assert len(list((tmp_path / "demo" / "enroll" / "alice").glob("*.jpg"))) == 2
    cap = cv2.VideoCapture(str(tmp_path / "demo" / "video.avi"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == len(info["truth"]) == 8 and info["truth"][:4] == ["alice", "alice", None, None]
    assert np.sum([t is None for t in info["truth"]]) == 4


def test_a_face_clip_is_one_place_with_the_face_moving_smoothly():
    from edgecv.data.faces import face_clip, random_identity
    from edgecv.data.samples import background_photos, random_background
    from edgecv.runtime.faces.detect import HaarFaceDetector

    rng = np.random.default_rng(1)  # a person the Haar cascade finds (it misses some: issue 18's face detector)
    place = cv2.cvtColor(cv2.resize(random_background(background_photos(), 320, rng), (320, 240)), cv2.COLOR_RGB2BGR)
    frames, truth = zip(*face_clip(random_identity(rng), rng, place, 12))
    assert len(frames) == 12 and all(f.shape == (240, 320, 3) for f in frames)
    found = [HaarFaceDetector().detect(f) for f in frames]
    boxes = [max(faces, key=lambda b: b.size).xyxy for faces in found if faces]  # the face, not a false hit
    assert len(boxes) >= 10
    centres = np.asarray([[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in boxes])
    assert np.abs(np.diff(centres, axis=0)).max() < 15  # a few pixels a frame, never a jump to another place
    for faces, (x1, y1, x2, y2) in zip(found, truth):  # the face's true box is where the face is found
        if faces:
            b = max(faces, key=lambda f: f.size).xyxy
            assert x1 <= (b[0] + b[2]) / 2 <= x2 and y1 <= (b[1] + b[3]) / 2 <= y2


def test_the_sample_is_cut_by_the_detector_asked_for(tmp_path):
    from click.testing import CliRunner

    from edgecv.cli import cli

    args = ["sample", "faces", "--identities", "6", "--per-identity", "2", "--seed", "4"]
    r = CliRunner().invoke(cli, [*args, str(tmp_path / "haar"), "--face-detector", "haar"])
    assert r.exit_code == 0 and "wrote 6 identities x 2 face chips" in r.output, r.output
    assert len(list((tmp_path / "haar").rglob("*.png"))) == 12
    r = CliRunner().invoke(cli, [*args, str(tmp_path / "bad"), "--face-detector", "nope"])
    assert r.exit_code == 2 and "expected haar" in r.output, r.output
