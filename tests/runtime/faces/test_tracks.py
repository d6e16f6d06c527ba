"""Names decided per face track: a person whose per-frame similarity wanders around the threshold is named in
(nearly) every frame of the track, and stays named; a stranger is never named; another enrolled person is."""

import numpy as np

from edgecv.runtime.faces.gallery import Templates, l2_normalize
from edgecv.runtime.faces.match import identify
from edgecv.runtime.faces.tracks import TrackIdentities


def noisy(template, n, sim, rng):
    """``n`` unit embeddings whose cosine to ``template`` is about ``sim`` (0.50-0.77 here: the demo's spread)."""
    d = len(template)
    noise = rng.standard_normal((n, d))
    noise -= np.outer(noise @ template, template)  # orthogonal to the template
    noise = l2_normalize(noise)
    s = np.clip(sim + rng.uniform(-0.13, 0.14, n), -1, 1)
    return (s[:, None] * template + np.sqrt(1 - s[:, None] ** 2) * noise).astype(np.float32)


def test_a_track_is_named_from_all_its_frames_and_strangers_never_are():
    rng = np.random.default_rng(0)
    d = 64
    vectors = l2_normalize(rng.standard_normal((3, d))).astype(np.float32)
    gallery = Templates(("alice", "bob", "carol"), vectors)
    threshold = 0.6
    alice = noisy(vectors[0], 40, 0.6, rng)
    stranger = noisy(l2_normalize(rng.standard_normal((1, d)))[0], 40, 0.7, rng)  # not enrolled
    per_frame = identify(alice, gallery, threshold)[0]
    assert 0.3 < np.mean([n == "alice" for n in per_frame]) < 0.7  # frame by frame: it flickers
    ids = TrackIdentities(threshold, gate=0.3)
    names = []
    for a, s in zip(alice, stranger):
        face_ids, got, _, sims = ids.decide(np.array([1, 2]), np.stack([a, s]), gallery)
        names.append(got)
    assert face_ids.tolist() == [1, 2] and ids.breaks == 0
    assert sum(n[0] == "alice" for n in names) >= 38 and all(n[0] == "alice" for n in names[5:])
    assert all(n[1] is None for n in names)  # the stranger's mean is no closer to anyone
    bob = noisy(vectors[1], 10, 0.7, rng)
    got = [ids.decide(np.array([3]), b[None], gallery)[1][0] for b in bob]
    assert got[-1] == "bob" and "alice" not in got


def test_a_box_track_that_jumps_to_another_person_starts_a_new_face_track():
    """Bob steps where alice was: the box tracker keeps the id, the face tracks must not (no name carried over)."""
    rng = np.random.default_rng(1)
    vectors = l2_normalize(rng.standard_normal((2, 64))).astype(np.float32)
    gallery = Templates(("alice", "bob"), vectors)
    ids = TrackIdentities(0.6, gate=0.3)
    for a in noisy(vectors[0], 10, 0.7, rng):
        face_ids, names, _, _ = ids.decide(np.array([5]), a[None], gallery)
    assert names == ["alice"] and face_ids.tolist() == [1]
    stranger = noisy(l2_normalize(rng.standard_normal((1, 64)))[0], 10, 0.7, rng)
    seen = [ids.decide(np.array([5]), s[None], gallery) for s in stranger]
    assert all(n == [None] for _, n, _, _ in seen)  # never "alice": in doubt, then a new face track
    # two frames in doubt (alice's track, reported unknown), then a new face track from the third on, kept
    assert [int(f[0]) for f, _, _, _ in seen] == [1, 1] + [2] * 8 and ids.breaks == 1
    assert ids.frames(2) == 8 + 2  # its evidence: the frames in doubt and all since


def test_one_bad_chip_leaves_a_named_track_named_and_unbroken():
    rng = np.random.default_rng(2)
    vectors = l2_normalize(rng.standard_normal((2, 64))).astype(np.float32)
    gallery = Templates(("alice", "bob"), vectors)
    ids = TrackIdentities(0.6, gate=0.3)
    frames = list(noisy(vectors[0], 12, 0.7, rng))
    frames[6] = l2_normalize(rng.standard_normal((1, 64)))[0]  # a blurred, half-missed face: like no one
    got = [ids.decide(np.array([1]), e[None], gallery) for e in frames]
    assert [n[0] for _, n, _, _ in got[3:]] == ["alice"] * 3 + [None] + ["alice"] * 5
    assert {int(f[0]) for f, _, _, _ in got} == {1} and ids.breaks == 0 and ids.frames(1) == 11
