"""The SQLite gallery: enrol/list/rename/remove, templates, the embedder stamp, reembed, and concurrent writers
and readers (separate processes) that leave it intact."""

import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from edgecv.errors import EdgecvError
from edgecv.runtime.faces.gallery import EmbedderStamp, Gallery, GalleryMismatch, l2_normalize
from edgecv.runtime.faces.match import identify, search, verify

STAMP = EmbedderStamp("aaaa", "run-a", 8)


def chips(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(n)]


def test_enrol_list_rename_remove_and_templates(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 8)), rng.normal(size=(1, 8))
    with Gallery(tmp_path / "g.db", create=True) as g:
        g.check_embedder(STAMP)
        assert g.enroll("ann", chips(3), a, ["x.jpg", "y.jpg", "z.jpg"]) == 3
        assert g.enroll("bo", chips(1), b) == 1
        assert g.enroll("bo", chips(1, 1), b * 2) == 2  # more shots of an enrolled person are added
        assert [(p.name, p.shots) for p in g.identities()] == [("ann", 3), ("bo", 2)]
        t = g.templates()
        assert t.names == ("ann", "bo")
        expect = l2_normalize(l2_normalize(a).sum(0))  # the mean of unit vectors, renormalised
        np.testing.assert_allclose(t.vectors[0], expect, rtol=1e-5)
        np.testing.assert_allclose(t.vectors[1], l2_normalize(b)[0], rtol=1e-5)
        np.testing.assert_array_equal(g.chips("ann")[1], chips(3)[1])  # PNG: lossless
        g.rename("bo", "bob")
        with pytest.raises(EdgecvError, match="already enrolled"):
            g.rename("ann", "bob")
        g.remove("ann")
        with pytest.raises(EdgecvError, match="no identity"):
            g.remove("ann")
        assert [p.name for p in g.identities()] == ["bob"]
        assert g.db.execute("SELECT COUNT(*) FROM shots").fetchone()[0] == 2  # ann's shots went with her
        assert g.integrity() == "ok"
        assert g.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_gallery_from_another_embedder_is_refused_and_reembed_restamps(tmp_path):
    with Gallery(tmp_path / "g.db", create=True) as g:
        g.check_embedder(STAMP)
        g.enroll("ann", chips(2), np.ones((2, 8)))
        other = EmbedderStamp("bbbb", "run-b", 4)
        with pytest.raises(GalleryMismatch, match="aaaa.*bbbb.*reembed"):
            g.check_embedder(other, "new.onnx")
        seen = []

        def embed(cs):
            seen.extend(cs)
            return np.tile(np.arange(1, 5, dtype=np.float32), (len(cs), 1))

        assert g.reembed(embed, other) == 2
        g.check_embedder(other)  # accepted now
        assert len(seen) == 2 and seen[0].shape == (32, 32, 3)
        np.testing.assert_allclose(g.templates().vectors[0], l2_normalize(np.arange(1, 5, dtype=np.float32)), rtol=1e-5)
        assert g.info()["dim"] == "4"


def test_another_artifact_of_the_same_embedder_is_accepted_with_a_reembed_hint(tmp_path, caplog):
    int8 = EmbedderStamp("aaaa", "run-a", 8, "int8 onnx")
    fp32 = EmbedderStamp("aaaa", "run-a", 8, "fp32 tflite")
    with Gallery(tmp_path / "g.db", create=True) as g:
        g.check_embedder(int8)
        g.enroll("ann", chips(1), np.ones((1, 8)))
        with caplog.at_level("WARNING"):
            g.check_embedder(int8)
            assert not caplog.records
            g.check_embedder(fp32, "m.tflite")  # accepted: same embedder, vectors comparable
        assert len(caplog.records) == 1
        assert "int8 onnx" in caplog.text and "fp32 tflite" in caplog.text and "reembed" in caplog.text
        caplog.clear()
        g.reembed(lambda cs: np.ones((len(cs), 8)), fp32)
        with caplog.at_level("WARNING"):
            g.check_embedder(fp32)
        assert not caplog.records and g.info()["embedder_variant"] == "fp32 tflite"


def test_missing_gallery_is_a_clear_error(tmp_path):
    with pytest.raises(EdgecvError, match="no such gallery"):
        Gallery(tmp_path / "none.db")


def test_search_and_identify_match_brute_force():
    rng = np.random.default_rng(1)
    from edgecv.runtime.faces.gallery import Templates

    t = Templates(tuple(f"p{i}" for i in range(50)), l2_normalize(rng.normal(size=(50, 16))))
    q = l2_normalize(rng.normal(size=(7, 16)))
    best, sims = search(q, t)
    for i in range(7):
        s = [float(q[i] @ v) for v in t.vectors]
        assert best[i] == int(np.argmax(s)) and sims[i] == pytest.approx(max(s), abs=1e-6)
    names, nearest, _ = identify(q, t, threshold=float(np.median(sims)))
    assert [n is None for n in names] == [s < np.median(sims) for s in sims]
    assert nearest == [f"p{i}" for i in best]
    assert verify(t.vectors[3], t.vectors[3] * 2, 0.99) == (True, pytest.approx(1.0))
    empty = Templates((), np.zeros((0, 16), np.float32))
    assert identify(q, empty, 0.5)[0] == [None] * 7


def _writer(path, k, n):
    with Gallery(path, create=True) as g:
        for i in range(n):
            g.enroll(f"w{k}_{i}", chips(2, k * 100 + i), np.random.default_rng(i).normal(size=(2, 8)))


def test_concurrent_enrolment_and_reading_keep_the_gallery_whole(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path, create=True) as g:
        g.check_embedder(STAMP)
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(str(path), k, 15)) for k in range(3)]
    for w in writers:
        w.start()
    sizes = []
    with Gallery(path) as reader:  # reads while the writers commit: always whole enrolments
        while any(w.is_alive() for w in writers):
            t = reader.templates()
            rows = reader.db.execute("SELECT COUNT(*) FROM shots").fetchone()[0]
            assert rows % 2 == 0  # an identity's two shots land together or not at all
            sizes.append(len(t))
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    with Gallery(path) as g:
        assert g.integrity() == "ok"
        assert len(g.identities()) == 45 and all(p.shots == 2 for p in g.identities())
    assert sizes == sorted(sizes)  # the reader never saw the gallery shrink
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_live_templates_reload_after_another_connection_commits(tmp_path):
    from edgecv.runtime.faces.match import LiveTemplates

    path = tmp_path / "g.db"
    with Gallery(path, create=True) as writer, Gallery(path) as reader:
        writer.enroll("ann", chips(1), np.ones((1, 8)))
        live = LiveTemplates(reader, poll_s=0.0)
        assert live.get().names == ("ann",)
        writer.enroll("bo", chips(1), -np.ones((1, 8)))
        assert live.get().names == ("ann", "bo") and live.reloads == 1
        assert live.get().names == ("ann", "bo") and live.reloads == 1  # nothing new: no reload


def test_a_file_that_is_not_a_gallery_is_refused(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(EdgecvError, match="not an edgecv face gallery"):
        Gallery(junk)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(EdgecvError, match="not an edgecv face gallery"):
        Gallery(other)


def test_gallery_files_are_owner_only_whatever_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o000)  # the most permissive: SQLite alone would make the files world-readable
    try:
        with Gallery(tmp_path / "g.db", create=True) as g:
            g.enroll("ann", chips(1), np.ones((1, 8)))
            files = [tmp_path / f"g.db{suffix}" for suffix in ("", "-wal", "-shm")]
            assert all(f.exists() for f in files)  # WAL mode: the log and its index exist while connected
            assert [oct(stat.S_IMODE(f.stat().st_mode)) for f in files] == [oct(0o600)] * 3
    finally:
        os.umask(old)


def test_a_removed_person_leaves_no_bytes_of_their_chips_or_embeddings(tmp_path):
    from edgecv.runtime.faces.gallery import _png

    rng = np.random.default_rng(5)
    ann_chips, bo_chips = chips(3, seed=7), chips(2, seed=8)
    ann_emb, bo_emb = l2_normalize(rng.normal(size=(3, 8))), l2_normalize(rng.normal(size=(2, 8)))
    path = tmp_path / "g.db"

    def stored() -> bytes:  # everything on disk: the database, its log and the log's index
        return b"".join(p.read_bytes() for p in (path, path.with_name("g.db-wal"), path.with_name("g.db-shm")) if p.exists())

    def found(data: bytes, cs, es) -> list[bool]:  # any 64-byte piece of a chip's PNG, any 8 bytes of a vector
        def pieces(b: bytes, n: int) -> list[bytes]:  # a blob may be split over overflow pages: look for its pieces
            return [b[i : i + n] for i in range(0, len(b) - n + 1, n)]

        return [any(p in data for p in pieces(_png(c), 64)) for c in cs] + [
            any(p in data for p in pieces(e.astype(np.float32).tobytes(), 8)) for e in es
        ]

    with Gallery(path, create=True) as g:
        g.enroll("ann", ann_chips, ann_emb)
        g.enroll("bo", bo_chips, bo_emb)
        names, vecs = g.embeddings()  # as stored (renormalised in float32)
        ann_emb, bo_emb = vecs[np.asarray(names) == "ann"], vecs[np.asarray(names) == "bo"]
        assert all(found(stored(), ann_chips, ann_emb))  # the check can see them while she is enrolled
        g.remove("ann")
        data = stored()
        assert not any(found(data, ann_chips, ann_emb))
        assert all(found(data, bo_chips, bo_emb))  # and the others' are still there
        assert [p.name for p in g.identities()] == ["bo"] and g.integrity() == "ok"


def people(n_people, shots, dim=16, spread=0.6, seed=0):
    """Synthetic enrolments: each person a random direction, each shot that direction plus noise."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(n_people, dim)))
    return [
        (f"p{k:02d}", l2_normalize(centres[k] + spread * rng.normal(size=(shots, dim)) / np.sqrt(dim))) for k in range(n_people)
    ]


def test_gallery_calibration_sets_the_threshold_from_impostor_scores_among_the_enrolled(tmp_path):
    from edgecv.runtime.faces.match import calibrate_gallery, stored_threshold

    enrolled = people(12, 4)
    with Gallery(tmp_path / "g.db", create=True) as g:
        g.check_embedder(EmbedderStamp("aaaa", "run-a", 16))
        for name, emb in enrolled:
            g.enroll(name, chips(len(emb)), emb)
        assert stored_threshold(g) is None  # not calibrated yet: run uses the artifact's
        cal = calibrate_gallery(g, 1e-2)
        # the reference, written out: each shot against every other person's template (mean of all their shots)
        templates = {n: l2_normalize(e.astype(np.float32).sum(0, keepdims=True))[0] for n, e in enrolled}
        impostor = np.asarray(
            [float(v.astype(np.float32) @ templates[m]) for n, e in enrolled for v in e for m in templates if m != n]
        )
        assert cal.impostors == len(impostor) == 12 * 4 * 11 and cal.resolved
        assert np.mean(impostor >= cal.threshold) <= 1e-2 < np.mean(impostor >= cal.threshold - 1e-3)
        assert cal.far == pytest.approx(np.mean(impostor >= cal.threshold))
        assert cal.genuine == 48 and 0.5 < cal.tar <= 1  # shots against their own template without them
        thr, line = stored_threshold(g)
        assert thr == pytest.approx(cal.threshold) and "12 people" in line and "again" not in line
        g.enroll("newcomer", chips(1), enrolled[0][1][:1] * -1)
        assert "13 people enrolled now" in stored_threshold(g)[1]  # stale: says so
        g.reembed(lambda cs: np.ones((len(cs), 16)), EmbedderStamp("bbbb", "run-b", 16))
        assert stored_threshold(g) is None  # made on another embedder's vectors: not used
    with Gallery(tmp_path / "two.db", create=True) as g:
        for name, emb in people(2, 3):
            g.enroll(name, chips(len(emb)), emb)
        few = calibrate_gallery(g, 1e-3)
        assert not few.resolved and few.impostors == 6 and few.far == 0  # just above the best impostor
    with Gallery(tmp_path / "one.db", create=True) as g:
        g.enroll("solo", chips(2), people(1, 2)[0][1])
        with pytest.raises(EdgecvError, match="at least 2 enrolled people"):
            calibrate_gallery(g, 1e-3)
