"""ByteTrack's published behaviour on scenes with known trajectories: stable ids through crossings, low-score
boxes keep an occluded object's id (the BYTE step), a lost object is found again, a one-frame false positive never
becomes an object, and greedy matching agrees with the optimal assignment where the choice is unambiguous."""

import numpy as np
import pytest

import edgecv.runtime.track.matching as matching
from edgecv.runtime.track import ByteTracker, TrackerOptions
from edgecv.runtime.track.kalman import initiate, predict, update, xyah_to_xyxy, xyxy_to_xyah
from edgecv.runtime.track.matching import greedy_match, greedy_pairs, iou_matrix, overlap_iou


def box(cx, cy, w=40, h=80):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def step(tracker, boxes, scores, classes):
    d, ids, _ = tracker.update(np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float), np.asarray(classes, int))
    return {int(k): int(i) for k, i in zip(d, ids)}  # detection index -> track id


def test_two_objects_crossing_keep_their_ids():
    tracker = ByteTracker()
    seen = {0: set(), 1: set()}
    for t in range(60):
        a, b = box(100 + 5 * t, 200), box(400 - 5 * t, 205)  # they pass through each other at t = 30
        got = step(tracker, [a, b], [0.9, 0.85], [0, 0])
        for k, i in got.items():
            seen[k].add(i)
    assert seen[0] == {1} and seen[1] == {2}  # the Kalman velocity carries each through the crossing


def test_low_score_boxes_keep_an_occluded_object_and_a_lost_one_is_found_again():
    tracker = ByteTracker()
    ids = []
    for t in range(50):
        cx = 100 + 4 * t
        if 10 <= t < 16:
            got = step(tracker, [box(cx, 200)], [0.3], [0])  # half hidden: only a low-score box
        elif 25 <= t < 35:
            got = step(tracker, [], [], [])  # fully hidden for 10 frames
        else:
            got = step(tracker, [box(cx, 200)], [0.9], [0])
        ids.append(got.get(0))
    assert set(i for i in ids if i is not None) == {1}  # one object, one id, all along
    assert all(i == 1 for i in ids[10:16])  # the BYTE step: reported on its low-score boxes
    assert ids[25:35] == [None] * 10 and ids[35] == 1  # found again by its predicted position
    no_byte = ByteTracker(TrackerOptions(low=0.5))  # without the low-score association the occlusion breaks it
    got = [step(no_byte, [box(100 + 4 * t, 200)], [0.3 if 10 <= t < 16 else 0.9], [0]).get(0) for t in range(20)]
    assert got[10:16] == [None] * 6


def test_a_low_box_of_the_visible_part_of_an_object_being_covered_continues_its_track():
    """An object walks behind something: the detector's box, now a low-score one, is of its visible 45%, which
    overlaps the track's predicted box by IoU 0.45: over the 0.4 the low boxes need, under ByteTrack's 0.5."""

    def ids(options):
        tracker, out = ByteTracker(options), []
        for t in range(24):
            x1, y1, x2, y2 = box(100 + 4 * t, 200)
            if 10 <= t < 16:
                got = step(tracker, [[x1, y1, x1 + 0.45 * (x2 - x1), y2]], [0.35], [0])
            else:
                got = step(tracker, [[x1, y1, x2, y2]], [0.9], [0])
            out.append(got.get(0))
        return out

    assert ids(TrackerOptions()) == [1] * 24
    assert ids(TrackerOptions(low_match_cost=0.5))[10:16] == [None] * 6  # ByteTrack's 0.5: lost while covered


def test_an_object_hidden_for_nearly_three_seconds_at_30_fps_keeps_its_id():
    def run(options):
        tracker, ids = ByteTracker(options), []
        for t in range(110):
            hidden = 20 <= t < 100  # 80 frames behind something
            ids.append(step(tracker, [] if hidden else [box(100 + 2 * t, 200)], [] if hidden else [0.9], [0]).get(0))
        return ids

    ids = run(TrackerOptions())  # lost tracks are kept 90 frames
    assert set(ids[:20]) == {1} and ids[20:100] == [None] * 80 and set(ids[101:]) == {1}
    assert set(run(TrackerOptions(lost_frames=30))[101:]) == {2}  # ByteTrack's 30: the object comes back as new


def test_a_one_frame_false_positive_is_never_an_object_and_ids_are_positive():
    tracker = ByteTracker()
    assert step(tracker, [box(100, 100)], [0.9], [0]) == {0: 1}  # frame 1: confirmed and reported at once
    got = step(tracker, [box(100, 100), box(500, 300)], [0.9, 0.95], [0, 0])
    assert got == {0: 1}  # the newcomer is tentative: not reported
    for _ in range(3):
        got = step(tracker, [box(100, 100)], [0.9], [0])
    assert got == {0: 1} and tracker.born == 1
    got = step(tracker, [box(100, 100), box(300, 300)], [0.9, 0.9], [0, 0])
    got = step(tracker, [box(100, 100), box(302, 301)], [0.9, 0.9], [0, 0])  # seen twice: confirmed
    assert got == {0: 1, 1: 3} and tracker.born == 2 and all(i > 0 for i in got.values())


def test_a_track_keeps_its_id_and_its_voted_class_through_class_flicker():
    tracker = ByteTracker()
    classes = [0, 0, 0, 1, 0, 0, 1, 0]  # the detector calls the same object class 1 now and then
    for t, c in enumerate(classes):
        got = tracker.update(np.asarray([box(100 + 2 * t, 100)], float), np.asarray([0.9]), np.asarray([c]))
        assert list(got.ids) == [1] and list(got.class_ids) == [0], (t, got)
    assert tracker.born == 1


def test_class_cost_inf_keeps_classes_apart_and_0_ignores_them():
    strict = ByteTracker(TrackerOptions(class_cost=float("inf")))
    step(strict, [box(100, 100)], [0.9], [0])
    assert step(strict, [box(101, 100)], [0.9], [0]) == {0: 1}  # its class: the same object
    assert step(strict, [box(102, 100)], [0.9], [1]) == {}  # the same place, another class: another object
    agnostic = ByteTracker(TrackerOptions(class_cost=0))
    step(agnostic, [box(100, 100)], [0.9], [0])
    assert step(agnostic, [box(101, 100)], [0.9], [1]) == {0: 1}


def test_a_box_of_another_class_only_overlaps_well_enough_to_continue_a_track():
    tracker = ByteTracker()  # class_cost 0.3: another class needs IoU * score over 0.5, the same class over 0.2
    step(tracker, [box(100, 100)], [0.9], [0])
    assert step(tracker, [box(120, 100)], [0.9], [1]) == {}  # IoU 0.33 under another class: not this track
    tracker = ByteTracker()
    step(tracker, [box(100, 100)], [0.9], [0])
    assert step(tracker, [box(120, 100)], [0.9], [0]) == {0: 1}


def test_two_classes_boxes_on_one_object_start_one_track():
    tracker = ByteTracker()
    for t in range(5):  # per-class NMS left a class-1 box on the same object as the class-0 box
        got = step(tracker, [box(100 + t, 100), box(101 + t, 101)], [0.9, 0.7], [0, 1])
        assert got == {0: 1}, (t, got)
    assert tracker.born == 1 and len(tracker) == 1
    tracker = ByteTracker()  # two objects side by side are two tracks
    for t in range(3):
        got = step(tracker, [box(100 + t, 100), box(150 + t, 100)], [0.9, 0.9], [0, 1])
    assert sorted(got.values()) == [1, 2]


def test_greedy_matching_agrees_with_the_optimal_assignment_on_unambiguous_scenes():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        cells = rng.choice(100, n, replace=False)  # a grid: each box has one clearly best track
        centres = np.stack([cells % 10, cells // 10], 1) * 36.0 + rng.uniform(-6, 6, (n, 2))  # neighbours overlap
        tracks = np.asarray([box(x, y, 30, 30) for x, y in centres])
        dets = tracks[rng.permutation(n)] + rng.normal(0, 2, (n, 4))
        cost = 1 - iou_matrix(tracks, dets)
        r, c = greedy_match(cost, 0.8)
        cost_lim = np.where(cost < 0.8, cost, 1e6)
        rr, cc = linear_sum_assignment(cost_lim)
        optimal = {(a, b) for a, b in zip(rr, cc) if cost_lim[a, b] < 0.8}
        assert set(zip(r.tolist(), c.tolist())) == optimal


def test_overlap_iou_finds_exactly_the_overlapping_pairs_and_their_iou_by_comparing_all_or_by_sweeping(monkeypatch):
    rng = np.random.default_rng(3)
    for n, m in [(1, 1), (7, 12), (120, 90), (300, 5)]:
        xy = rng.uniform(0, 600, (n + m, 2))
        wh = rng.uniform(2, 120, (n + m, 2)) * np.where(rng.random((n + m, 1)) < 0.05, 4, 1)  # some wide boxes
        boxes = np.concatenate([xy, xy + wh], 1)
        a, b = boxes[:n], boxes[n:]
        expected = np.nonzero(iou_matrix(a, b) > 0)  # row-major, as both ways must be
        for sweep in (10**9, 0):  # compare all pairs / always sweep
            monkeypatch.setattr(matching, "_SWEEP", sweep)
            i, j, iou = overlap_iou(a, b)
            assert np.array_equal(i, expected[0]) and np.array_equal(j, expected[1])
            assert np.allclose(iou, iou_matrix(a, b)[i, j], atol=1e-6)
    # exact values: a box sharing only an edge, or with no width, overlaps nothing; 10x10 half over 10x20: 50 / 250
    a = np.asarray([[0.0, 0, 10, 10], [20, 0, 20, 10]])
    b = np.asarray([[10.0, 0, 20, 10], [5, 0, 15, 20]])
    for sweep in (10**9, 0):
        monkeypatch.setattr(matching, "_SWEEP", sweep)
        i, j, iou = overlap_iou(a, b)
        assert i.tolist() == [0] and j.tolist() == [1] and iou.tolist() == [0.2]


def test_greedy_pairs_on_candidate_pairs_is_greedy_on_the_full_matrix():
    rng = np.random.default_rng(4)
    for _ in range(100):
        cost = rng.choice([0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 2.0], size=rng.integers(1, 9, 2))  # ties included
        rows, cols = np.nonzero(cost < 1)
        r, c = greedy_pairs(rows, cols, cost[rows, cols])
        ref, used_r, used_c = set(), set(), set()  # the plain greedy: lowest cost first, earlier pair on ties
        for k in np.argsort(cost[rows, cols], kind="stable"):
            if rows[k] not in used_r and cols[k] not in used_c:
                used_r.add(rows[k])
                used_c.add(cols[k])
                ref.add((int(rows[k]), int(cols[k])))
        assert set(zip(r.tolist(), c.tolist())) == ref


def test_kalman_follows_a_constant_velocity_box():
    xyxy = np.asarray([box(100, 100)], float)
    mean, cov = initiate(xyxy_to_xyah(xyxy))
    for t in range(1, 30):
        predict(mean, cov)
        update(mean, cov, xyxy_to_xyah(np.asarray([box(100 + 3 * t, 100 - 2 * t)], float)))
    ahead = mean.copy()
    predict(ahead, cov.copy())
    assert xyah_to_xyxy(ahead[0])[0] == pytest.approx(box(100 + 3 * 30, 100 - 2 * 30), abs=0.5)
    assert mean[1, 0, :2] == pytest.approx([3, -2], abs=0.05)


def test_correcting_some_tracks_leaves_the_others_as_they_were():
    rng = np.random.default_rng(2)
    xyah = np.abs(rng.normal(100, 20, (7, 4)))
    mean, cov = initiate(xyah)
    predict(mean, cov)
    tracks, z = np.asarray([1, 4, 5]), xyah[[1, 4, 5]] + rng.normal(0, 2, (3, 4))
    some_mean, some_cov = mean.take(tracks, 1), cov.take(tracks, 1)
    update(some_mean, some_cov, z)  # the matched tracks alone, gathered
    update(mean, cov, z, tracks)
    np.testing.assert_array_equal(mean[:, tracks], some_mean)
    np.testing.assert_array_equal(cov[:, tracks], some_cov)
    before_mean, before_cov = initiate(xyah)
    predict(before_mean, before_cov)
    others = [0, 2, 3, 6]
    np.testing.assert_array_equal(mean[:, others], before_mean[:, others])
    np.testing.assert_array_equal(cov[:, others], before_cov[:, others])
    assert not np.array_equal(mean[:, tracks], before_mean[:, tracks])


def matrix_kalman(xyah_seq):
    """The textbook 8-state filter with ByteTrack's noise weights, in full matrix form (the reference)."""
    pos, vel = 1 / 20, 1 / 160
    F = np.eye(8)
    F[:4, 4:] = np.eye(4)
    H = np.eye(4, 8)
    z0 = xyah_seq[0]
    h = z0[3]
    x = np.concatenate([z0, np.zeros(4)])
    P = np.diag(np.square([2 * pos * h, 2 * pos * h, 1e-2, 2 * pos * h, 10 * vel * h, 10 * vel * h, 1e-5, 10 * vel * h]))
    for z in xyah_seq[1:]:
        h = x[3]
        Q = np.diag(np.square([pos * h, pos * h, 1e-2, pos * h, vel * h, vel * h, 1e-5, vel * h]))
        x, P = F @ x, F @ P @ F.T + Q
        h = x[3]
        R = np.diag(np.square([pos * h, pos * h, 1e-1, pos * h]))
        S = H @ P @ H.T + R
        K = P @ H.T @ np.linalg.inv(S)
        x, P = x + K @ (z - H @ x), P - K @ S @ K.T
    return x, P


def test_the_elementwise_filter_is_the_matrix_filter():
    rng = np.random.default_rng(1)
    seq = np.cumsum(rng.normal(0, 3, (25, 4)), 0) + [300, 200, 0.5, 80]
    seq[:, 2] = 0.5 + rng.normal(0, 0.01, 25)
    mean, cov = initiate(seq[:1])
    for z in seq[1:]:
        predict(mean, cov)
        update(mean, cov, z[None])
    x, P = matrix_kalman(seq)
    np.testing.assert_allclose(mean[:, 0].ravel(), x, rtol=1e-9, atol=1e-9)
    for i in range(4):  # the blocks, and nothing outside them
        np.testing.assert_allclose(
            [cov[0, 0, i], cov[1, 0, i], cov[2, 0, i]], [P[i, i], P[i, i + 4], P[i + 4, i + 4]], rtol=1e-9, atol=1e-12
        )
    blocks = np.zeros_like(P)
    for i in range(4):
        blocks[np.ix_([i, i + 4], [i, i + 4])] = P[np.ix_([i, i + 4], [i, i + 4])]
    np.testing.assert_allclose(P, blocks, atol=1e-12)


def test_an_object_the_detector_splits_over_three_classes_is_one_confident_track():
    tracker = ByteTracker()  # high 0.5, birth 0.6: no single box below would start a track
    boxes, scores = [box(100, 100), box(101, 100), box(100, 101)], np.asarray([0.35, 0.3, 0.2])
    keep, fused, votes = tracker.merge(np.asarray(boxes, float), scores, np.asarray([2, 0, 1]))
    assert list(keep) == [0] and fused[0] == pytest.approx(1 - 0.65 * 0.7 * 0.8)
    np.testing.assert_allclose(votes[0, :3], [0.3, 0.2, 0.35])
    for t in range(3):
        got = tracker.update(
            np.asarray([box(100 + t, 100), box(101 + t, 100), box(100 + t, 101)], float), scores, np.asarray([2, 0, 1])
        )
    assert list(got.index) == [0] and list(got.ids) == [1] and list(got.class_ids) == [2] and tracker.born == 1
    same_class = ByteTracker()  # boxes of one class are the NMS's to judge, never merged here
    keep, _, _ = same_class.merge(np.asarray(boxes[:2], float), scores[:2], np.asarray([0, 0]))
    assert list(keep) == [0, 1]


def test_a_lost_object_that_comes_back_off_its_predicted_path_is_found_again_by_its_buffered_box():
    def run(options, past=30):
        tracker = ByteTracker(options)
        for t in range(10):  # 2 px a frame to the right
            step(tracker, [box(100 + 2 * t, 100)], [0.9], [0])
        for _ in range(12):  # hidden, while (unseen) it speeds up
            step(tracker, [], [], [])
        return step(tracker, [box(100 + 2 * 9 + 2 * 12 + past, 100)], [0.9], [0])  # ``past`` px past the prediction

    assert run(TrackerOptions()) == {0: 1}
    assert run(TrackerOptions(recover_cost=0.0)) == {}  # plain IoU (0.14) cannot: a new, tentative track
    # a box's width (40 px) past it: the buffered IoU is 0.33 (boxes widened by half their size on each side), over
    # the 0.2 asked; with C-BIoU's smaller buffer (0.3 of the size, IoU over 0.3 asked) 0.23, and a new track
    assert run(TrackerOptions(), past=40) == {0: 1}
    assert run(TrackerOptions(recover_buffer=0.3, recover_cost=0.7), past=40) == {}
    assert run(TrackerOptions(), past=100) == {}  # two and a half widths away: another object


def test_an_object_arriving_beside_a_tracked_one_is_born_but_a_box_a_quarter_over_it_is_not():
    def run(dx):  # a second box from frame 3, dx px right of the tracked object (IoU 0.25 at 24 px, 0.10 at 33)
        tracker = ByteTracker()
        for t in range(6):
            boxes = [box(100 + t, 100)] + ([box(100 + dx + t, 100)] if t >= 2 else [])
            got = step(tracker, boxes, [0.9, 0.9][: len(boxes)], [0] * len(boxes))
        return got, tracker.born

    assert run(33) == ({0: 1, 1: 2}, 2)
    assert run(24) == ({0: 1}, 1)  # over ``birth_iou`` (0.2): the detector's second box on the object


def test_a_second_offset_box_on_a_tracked_object_starts_no_second_track():
    def run(options):
        tracker = ByteTracker(options)
        for t in range(6):  # from frame 2 the detector also gives an offset box of the same class (IoU ~0.4)
            boxes = [box(100 + t, 100)] + ([box(118 + t, 100)] if t else [])
            got = step(tracker, boxes, [0.9, 0.8][: len(boxes)], [0] * len(boxes))
        return got, tracker.born

    assert run(TrackerOptions()) == ({0: 1}, 1)
    assert run(TrackerOptions(birth_iou=1.0))[1] == 2  # without the rule the offset box becomes an object


def test_a_weaker_box_around_a_better_box_of_its_class_is_a_group_not_an_object():
    a, b = box(100, 100), box(130, 100)  # two objects of one class, one half over the other
    group = [70, 50, 160, 150]  # the detector's box around both: it covers all of each
    tracker = ByteTracker()
    keep, scores, _ = tracker.merge(np.asarray([a, b, group], float), np.asarray([0.9, 0.8, 0.6]), np.asarray([0, 0, 0]))
    assert list(keep) == [0, 1, 2] and list(scores[:2]) == [0.9, 0.8]
    assert 0.49 < scores[2] < tracker.o.high  # the group's box, over a better box of its class, is a low box
    _, scores, _ = tracker.merge(np.asarray([a, group], float), np.asarray([0.6, 0.6]), np.asarray([0, 0]))
    assert list(scores) == [0.6, 0.6]  # as sure as the box inside it: no evidence of a group, in either order
    _, scores, _ = tracker.merge(np.asarray([group, a], float), np.asarray([0.6, 0.6]), np.asarray([0, 0]))
    assert list(scores) == [0.6, 0.6]
    keep, _, _ = tracker.merge(np.asarray([a, group], float), np.asarray([0.5, 0.9]), np.asarray([0, 0]))
    assert list(keep) == [0, 1]  # a box inside a better one is an object (a far, small one): kept
    keep, _, _ = tracker.merge(np.asarray([a, group], float), np.asarray([0.9, 0.6]), np.asarray([0, 1]))
    assert list(keep) == [0, 1]  # a box of another class around it (a person holding a bag): kept

    def reported(options):
        """Per frame, the boxes reported under each id; the first object's own box is missed on frames 10-12,
        while the group's box and the second object's are there."""
        tracker, out = ByteTracker(options), []
        for t in range(20):
            boxes, scores = [b, group], [0.9, 0.6]
            if not 10 <= t < 13:
                boxes, scores = [a] + boxes, [0.9] + scores
            out.append({i: boxes[k] for k, i in step(tracker, boxes, scores, [0] * len(boxes)).items()})
        return out

    frames = reported(TrackerOptions())
    assert all(f == {1: a, 2: b} for f in frames[:10] + frames[13:])  # two objects, the first found again
    assert all(f == {2: b} for f in frames[10:13])  # lost while its box is missed, not given the group's box
    tracker, adult = ByteTracker(), []  # a tracked object that a smaller, surer one of its class steps in front of
    for t in range(9):
        big = [60 + t, 40, 150 + t, 160]
        got = step(tracker, [big], [0.8], [0]) if t < 3 else step(tracker, [box(100, 110, 30, 50), big], [0.9, 0.6], [0, 0])
        adult.append(got.get(0 if t < 3 else 1))
    assert adult == [1] * 9  # its box, now a low box, still continues its track (dropped, the track was lost)
    assert any(group in f.values() for f in reported(TrackerOptions(group_cover=1.0)))  # without: a third object


def test_a_box_that_fits_a_tracked_and_a_lost_track_about_as_well_continues_the_tracked_one():
    def ids(options):
        """The id on the moving object's box each frame; the standing one, just ahead of it, is hidden behind it
        from frame 9, and on frame 10 the moving one's box lands 2 px ahead of its path, 1 px short of the hidden
        one's last box (IoU 0.93 and 0.97 with the two tracks' predictions)."""
        tracker, out = ByteTracker(options), []
        for t in range(14):
            a, b = box(100 + 3 * t + (2 if t >= 10 else 0), 100, 60, 60), box(133, 100, 60, 60)
            boxes = [a, b] if t < 9 else [a]
            out.append(step(tracker, boxes, [0.9] * len(boxes), [0] * len(boxes))[0])
        return out

    assert ids(TrackerOptions()) == [1] * 14  # DeepSORT's cascade, soft: the track seen last frame keeps its object
    assert ids(TrackerOptions(lost_cost=0)) == [1] * 10 + [2] * 4  # without: the hidden one's lost track takes it
