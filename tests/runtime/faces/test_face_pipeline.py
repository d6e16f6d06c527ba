"""The face task end to end on the device, torch blocked: enrol people from photos, then `edgecv run` over a video
of other photos of them and of strangers names the enrolled and reports the strangers unknown; a gallery from
another embedder is refused and `gallery reembed` restores matching; enrolling while a run reads the gallery."""

import json
import sqlite3
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from edgecv.data.faces import write_face_demo
from tests.runtime.test_pipeline import cli_torch_blocked, frame_count, run_torch_blocked


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("face_demo")
    return out, write_face_demo(out, frames_per_person=12)


def enrol(gallery, model, demo_dir, names):
    for name in names:
        photos = sorted(str(p) for p in (demo_dir / "enroll" / name).glob("*.jpg"))
        proc = cli_torch_blocked("enroll", "--gallery", str(gallery), "--model", str(model), "--name", name, *photos)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"enrolled {name}" in proc.stdout


def segment_votes(tmp_path, truth) -> dict[str, str | None]:
    """Who each person's stretch of the video was taken for: the most frequent match over its detected faces."""
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    votes: dict[str, Counter] = {}
    segment = [f"{t}" if t else None for t in truth]
    k, last = -1, object()
    for i, t in enumerate(truth):  # strangers' stretches are told apart by position
        if t != last:
            k, last = k + 1, t
        segment[i] = f"{k}:{t}"
    for e in events:
        if e["event"] == "result":
            for f in e["faces"]:
                votes.setdefault(segment[e["frame"]], Counter())[f["name"]] += 1
    return {seg: c.most_common(1)[0][0] for seg, c in votes.items()}


@pytest.mark.parametrize("model", ["model_int8.onnx", "model_int8.tflite"])
def test_run_names_enrolled_people_and_reports_strangers_unknown(embed_export, demo, tmp_path, model):
    out, _ = embed_export
    demo_dir, info = demo
    gallery = tmp_path / "faces.db"
    enrol(gallery, out / model, demo_dir, info["enrolled"])
    proc = run_torch_blocked(out / model, demo_dir / "video.avi", tmp_path, "--gallery", str(gallery))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert frame_count(tmp_path / "out.mp4") == len(info["truth"])
    votes = segment_votes(tmp_path, info["truth"])
    expected = {seg: (seg.split(":")[1] if seg.split(":")[1] != "None" else None) for seg in votes}
    assert len(votes) >= 3 and votes == expected, votes
    kinds = Counter(json.loads(line)["event"] for line in (tmp_path / "events.jsonl").read_text().splitlines())
    assert kinds["known_face"] >= 1 and kinds["unknown_face"] >= 1, kinds


def test_gallery_from_another_embedder_is_refused_and_reembed_restores_matching(embed_export, demo, tmp_path):
    out, _ = embed_export
    model = out / "model_int8.onnx"
    demo_dir, info = demo
    gallery = tmp_path / "faces.db"
    enrol(gallery, model, demo_dir, info["enrolled"])
    # what a gallery enrolled with an older embedder holds: vectors from another space, another embedder id
    db = sqlite3.connect(gallery)
    rng = np.random.default_rng(0)
    for (sid,) in db.execute("SELECT id FROM shots").fetchall():
        v = rng.normal(size=64).astype(np.float32)
        db.execute("UPDATE shots SET embedding = ? WHERE id = ?", ((v / np.linalg.norm(v)).tobytes(), sid))
    db.execute("UPDATE info SET value = '0ldembedder00000' WHERE key = 'embedder_id'")
    db.commit()
    db.close()
    refused = run_torch_blocked(model, demo_dir / "video.avi", tmp_path, "--gallery", str(gallery))
    assert refused.returncode == 2 and "0ldembedder00000" in refused.stderr and "gallery reembed" in refused.stderr
    fixed = cli_torch_blocked("gallery", "reembed", "--gallery", str(gallery), "--model", str(model))
    assert fixed.returncode == 0 and "re-embedded" in fixed.stdout, fixed.stderr[-2000:]
    proc = run_torch_blocked(model, demo_dir / "video.avi", tmp_path, "--gallery", str(gallery))
    assert proc.returncode == 0, proc.stderr[-3000:]
    votes = segment_votes(tmp_path, info["truth"])
    assert [v for v in votes.values() if v] and set(v for v in votes.values() if v) <= set(info["enrolled"])
    listed = cli_torch_blocked("gallery", "list", "--gallery", str(gallery))
    assert "alice" in listed.stdout and "bob" in listed.stdout


def test_run_uses_the_threshold_gallery_calibrate_stored_unless_one_is_given(embed_export, demo, tmp_path):
    from edgecv.runtime.faces.gallery import Gallery

    out, _ = embed_export
    model = out / "model_int8.onnx"
    demo_dir, info = demo
    gallery = tmp_path / "faces.db"
    enrol(gallery, model, demo_dir, info["enrolled"])
    cal = cli_torch_blocked("gallery", "calibrate", "--gallery", str(gallery), "--target-far", "0.2")
    assert cal.returncode == 0 and "match threshold" in cal.stdout, cal.stderr[-2000:]
    with Gallery(gallery) as g:
        thr = float(g.calibration()["threshold"])
    photo = sorted((demo_dir / "enroll" / info["enrolled"][0]).glob("*.jpg"))[0]
    proc = run_torch_blocked(model, photo, tmp_path, "--gallery", str(gallery))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"match threshold {thr:.3f} (calibrated on this gallery at FAR 0.2" in proc.stdout + proc.stderr
    given = run_torch_blocked(model, photo, tmp_path, "--gallery", str(gallery), "--match-threshold", "0.9")
    assert given.returncode == 0 and "match threshold 0.900 (given)" in given.stdout + given.stderr


def test_an_embedder_without_a_calibrated_threshold_asks_for_one_instead_of_guessing(embed_export, demo, tmp_path):
    import dataclasses

    from edgecv.artifact import read_meta
    from edgecv.export._embed import publish

    out, _ = embed_export
    demo_dir, info = demo
    meta = read_meta(out / "model_int8.onnx")
    never = dataclasses.replace(meta.thresholds, match=None, verify=None, track_gate=None, val_tar=None, val_far=None)
    model = publish(out / "model_int8.onnx", tmp_path / "uncalibrated.onnx", dataclasses.replace(meta, thresholds=never))
    gallery = tmp_path / "faces.db"
    enrol(gallery, model, demo_dir, info["enrolled"][:1])
    photo = sorted((demo_dir / "enroll" / info["enrolled"][0]).glob("*.jpg"))[0]
    refused = run_torch_blocked(model, photo, tmp_path, "--gallery", str(gallery))
    assert refused.returncode == 2 and "thresholds.match was never calibrated" in refused.stderr, refused.stderr[-2000:]
    assert "--match-threshold" in refused.stderr and "gallery calibrate" in refused.stderr
    given = run_torch_blocked(model, photo, tmp_path, "--gallery", str(gallery), "--match-threshold", "0.5")
    assert given.returncode == 0 and "match threshold 0.500 (given)" in given.stdout + given.stderr, given.stderr[-2000:]


def test_enrolling_while_a_run_reads_the_gallery(embed_export, demo, tmp_path):
    out, _ = embed_export
    model = out / "model_int8.onnx"
    demo_dir, info = demo
    gallery = tmp_path / "faces.db"
    enrol(gallery, model, demo_dir, info["enrolled"][:1])
    code = (
        "from tests.runtime.test_pipeline import run_torch_blocked; import sys, pathlib; "
        f"p = run_torch_blocked({str(model)!r}, {str(demo_dir / 'video.avi')!r}, pathlib.Path({str(tmp_path)!r}), "
        f"'--gallery', {str(gallery)!r}); sys.stderr.write(p.stderr); sys.exit(p.returncode)"
    )
    runner = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    enrol(gallery, model, demo_dir, info["enrolled"][1:])  # writes while the run reads
    _, err = runner.communicate(timeout=240)
    assert runner.returncode == 0, err[-3000:]
    listed = cli_torch_blocked("gallery", "list", "--gallery", str(gallery))
    assert all(n in listed.stdout for n in info["enrolled"])
    assert sqlite3.connect(gallery).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_verify_two_photos_one_to_one(embed_export, demo):
    import itertools

    import cv2

    from edgecv.runtime.faces.detect import create_face_detector
    from edgecv.runtime.faces.enroll import verify_photos

    out, _ = embed_export
    demo_dir, _ = demo
    model = str(out / "model_int8.tflite")
    det = create_face_detector()  # the default, which cut the training chips
    people = {
        name: [str(p) for p in sorted((demo_dir / "enroll" / name).glob("*.jpg")) if len(det.detect(cv2.imread(str(p)))) == 1]
        for name in ("alice", "bob")
    }
    # every pair, not one: this small fixture model (TAR@FAR=1e-2 ~0.5) at its FAR-0.05 threshold calls many
    # alice-bob pairs the same person, so one pair's verdict would say little; the ranking must hold
    pairs = [(a, b, True) for n in people for a, b in itertools.combinations(people[n], 2)]
    pairs += [(a, b, False) for a in people["alice"] for b in people["bob"]]
    verdicts = [(a, b, truth, verify_photos(model, a, b, det)) for a, b, truth in pairs]
    genuine = [v.similarity for *_, truth, v in verdicts if truth]
    impostor = [v.similarity for *_, truth, v in verdicts if not truth]
    assert len(genuine) >= 4 and len(impostor) >= 9
    auc = sum(g > i for g in genuine for i in impostor) / (len(genuine) * len(impostor))
    assert auc >= 0.8 and sum(genuine) / len(genuine) > sum(impostor) / len(impostor) + 0.1, (auc, genuine, impostor)
    assert all(v.same == (v.similarity >= v.threshold) for *_, v in verdicts)
    # the command gives the library's verdict, exit code 0 for the same person and 1 for different people
    for a, b, _, v in [next(x for x in verdicts if x[3].same), next(x for x in verdicts if not x[3].same)]:
        p = cli_torch_blocked("verify", "--model", model, a, b)
        word = "same person" if v.same else "different people"
        assert p.returncode == (0 if v.same else 1) and p.stdout.startswith(f"{word}: similarity {v.similarity:.4f}"), (
            p.stdout + p.stderr[-2000:]
        )
