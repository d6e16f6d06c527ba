"""The tracker's colours (``appearance.py``): an object's colours apart from its background, the same on any
background and unlike another object's; and what they change in the tracker, where boxes alone cannot tell: a box
that two tracks fit as well, and an object that comes back far from where it was lost."""

import cv2
import numpy as np

import edgecv.runtime.track.appearance as appearance
from edgecv.data.samples import background_photos, random_background
from edgecv.runtime.track import ByteTracker, TrackerOptions
from edgecv.runtime.track.appearance import LookOptions, Looks, colours

RED, BLUE = (0, 0, 220), (220, 60, 0)  # BGR


def scene(photo, objects):
    """``photo`` with hollow discs (cx, cy, colour) drawn on it, and their boxes: a ring is mostly background."""
    img = photo.copy()
    for cx, cy, colour in objects:
        cv2.circle(img, (int(cx), int(cy)), 18, colour, 6)
    return img, np.asarray([[cx - 21, cy - 21, cx + 21, cy + 21] for cx, cy, _ in objects], float)


def photos(n):
    rng, all_photos = np.random.default_rng(0), background_photos()
    return [random_background(all_photos, 320, rng) for _ in range(n)]


def test_an_object_s_colours_are_the_same_on_any_background_and_unlike_another_object_s():
    a, b = photos(2)
    red_on_a, box = scene(a, [(100, 100, RED)])
    red_on_b, _ = scene(b, [(200, 150, RED)])
    blue_on_a, _ = scene(a, [(100, 100, BLUE)])
    red1 = colours(red_on_a, box)[0]
    red2 = colours(red_on_b, np.asarray([[179, 129, 221, 171]], float))[0]
    blue = colours(blue_on_a, box)[0]
    assert np.isclose(np.linalg.norm(red1), 1) and red1 @ red2 > 0.9 and red1 @ blue < 0.1
    # without its ring (a plain histogram of the box), the photo inside the ring makes red and blue look alike
    plain_red, plain_blue = colours(red_on_a, box, ring=0)[0], colours(blue_on_a, box, ring=0)[0]
    assert plain_red @ plain_blue > 0.3 > red1 @ blue
    # a box on nothing but its own surroundings has no colours of its own; a box half out of the frame is read
    flat = np.full((100, 100, 3), 90, np.uint8)
    assert not colours(flat, np.asarray([[30, 30, 60, 60]], float)).any()
    assert colours(red_on_a, np.asarray([[-20, 80, 22, 122]], float)).shape == (1, appearance.SIZE)


def test_a_plain_colour_falls_in_its_hue_saturation_and_value_bin():
    grey = np.full((60, 60, 3), 128, np.uint8)
    box = np.asarray([[20, 20, 40, 40]], float)
    for bgr, (hue, sat, val) in [((0, 0, 255), (0, 3, 3)), ((255, 0, 0), (5, 3, 3)), ((64, 128, 64), (2, 2, 2))]:
        img = grey.copy()
        img[20:40, 20:40] = bgr
        h, s, v = cv2.cvtColor(np.uint8([[bgr]]), cv2.COLOR_BGR2HSV)[0, 0].tolist()  # OpenCV's 8-bit HSV: hue 0-179
        assert (h * 8 // 180, s // 64, v // 64) == (hue, sat, val)
        expected = np.zeros(appearance.SIZE, np.float32)
        expected[hue * 16 + sat * 4 + val] = 1  # hue, then saturation, then value (8 x 4 x 4)
        np.testing.assert_allclose(colours(img, box)[0], expected, atol=1e-6)


def between(options, with_image=True):
    """A red and a blue hollow disc of one class stand side by side; for a frame the red one is not detected and the
    blue one is seen halfway towards it (IoU 0.35 with either track: boxes cannot tell); then both are back. Each
    frame's detection index -> track id."""
    photo = photos(1)[0]
    tracker, out = ByteTracker(options), []
    for t in range(14):
        objects = [(120, 120, BLUE)] if t == 10 else [(100, 120, RED), (140, 120, BLUE)]
        img, boxes = scene(photo, objects)
        got = tracker.update(boxes, np.full(len(boxes), 0.9), np.zeros(len(boxes), int), img if with_image else None)
        out.append(dict(zip(got.index.tolist(), got.ids.tolist())))
    return out


def test_a_box_two_tracks_could_take_goes_to_the_one_it_looks_like():
    frames = between(TrackerOptions())
    assert frames[10] == {0: 2}  # the blue disc's box, to the blue disc's track
    assert all(f == {0: 1, 1: 2} for f in frames[:10] + frames[11:])  # red stays 1 (found again), blue 2
    for blind in (between(TrackerOptions(), with_image=False), between(TrackerOptions(appearance=None))):
        assert blind[10] == {0: 1}  # by boxes alone a tie, taken by the first track: the red one's id on blue


def come_back(colour, options=None, at=150, hidden=20):
    """A red disc moves right, is hidden for ``hidden`` frames, and a disc of ``colour`` shows up ``at`` px left of
    where the red one would be by then (it turned back). The id the newcomer gets, over 2 frames."""
    photo = photos(1)[0]
    tracker = ByteTracker(options or TrackerOptions())
    for t in range(15):
        img, boxes = scene(photo, [(40 + 3 * t, 160, RED)])
        tracker.update(boxes, [0.9], [0], img)
    for _ in range(hidden):
        tracker.update(np.zeros((0, 4)), [], [], photo)
    x = 40 + 3 * (15 + hidden) - at
    ids = []
    for _ in range(2):
        img, boxes = scene(photo, [(x, 160, colour)])
        ids.append(tracker.update(boxes, [0.9], [0], img).ids.tolist())
    return ids


def test_a_lost_object_is_found_again_by_its_colours_within_reach_and_another_is_a_new_object():
    assert come_back(RED, at=75) == [[1], [1]]  # 75 px off (1.8 box sizes): beyond the buffered IoU, within reach
    assert come_back(RED, TrackerOptions(appearance=None), at=75) == [[], [2]]  # by boxes alone: a new object
    assert come_back(BLUE, at=75) == [[], [2]]  # not its colours: a new object (born, then confirmed)
    # reach: the box's size (42 px), and 0.3 of it per frame lost
    assert come_back(RED, at=150) == [[1], [1]]  # 3.6 box sizes off, lost 21 frames: within reach (7.3 box sizes)
    assert come_back(RED, at=150, hidden=5) == [[], [2]]  # lost 6 frames: out of reach (2.8 box sizes)


def test_colours_are_read_only_where_motion_is_in_doubt_and_on_a_track_s_learning_turns(monkeypatch):
    read = []
    real = appearance.colours
    monkeypatch.setattr(appearance, "colours", lambda image, xyxy, **kw: read.append(len(xyxy)) or real(image, xyxy, **kw))
    photo = photos(1)[0]

    def run(gap, red_later=0.9):
        read.clear()
        tracker = ByteTracker()
        for t in range(30):  # two objects side by side, ``gap`` px apart, moving together: nothing in doubt
            img, boxes = scene(photo, [(40 + 2 * t, 60, RED), (40 + 2 * t, 60 + 42 + gap, BLUE)])
            got = tracker.update(boxes, [0.9 if t < 5 else red_later, 0.9], [0, 0], img)
            assert got.ids.tolist() == [1, 2]
        return list(read)

    assert run(gap=20) == [2, 2, 2, 2]  # within a box's size: frame 1 (first lessons), then frames 10, 20 and 30
    assert run(gap=60) == [2]  # far apart: no mix-up can come, the colours learnt at first are kept
    assert run(gap=20, red_later=0.3) == [2, 1, 1, 1]  # a box under the tracking score continues its track, teaches nothing


def meet_and_turn(options, blue_hidden_after=False):
    """A red and a blue disc of one class meet head-on (frame 26: one on the other) and both turn back, so each
    track's motion carries it on to the other disc; with ``blue_hidden_after``, the blue one is not seen again.
    Each frame's detection index -> track id (index 0: red), and the pairs of ids the tracker said it exchanged."""
    photo = photos(1)[0]
    tracker, out, exchanged = ByteTracker(options), [], []
    for t in range(45):
        d = 4 * (t if t <= 25 else 50 - t)
        objects = [(60 + d, 120, RED)] + ([] if blue_hidden_after and t > 25 else [(260 - d, 120, BLUE)])
        img, boxes = scene(photo, objects)
        got = tracker.update(boxes, np.full(len(boxes), 0.9), np.zeros(len(boxes), int), img)
        out.append(dict(zip(got.index.tolist(), got.ids.tolist())))
        exchanged.append(sorted(map(sorted, tracker.exchanged)))
    return out, exchanged


def test_two_objects_that_traded_tracks_get_their_ids_back_once_their_boxes_are_clear():
    ids, exchanged = meet_and_turn(TrackerOptions())
    assert [t for t, pairs in enumerate(exchanged) if pairs] == [39] and exchanged[39] == [[1, 2]]  # told, once
    assert all(f == {0: 1, 1: 2} for f in ids[:25])
    assert all(f == {0: 2, 1: 1} for f in ids[25:39])  # motion took each id across (frame 30: boxes still overlap)
    assert all(f == {0: 1, 1: 2} for f in ids[39:])  # frame 40, the first check with both boxes clear: put right
    unchecked, _ = meet_and_turn(TrackerOptions(appearance=LookOptions(unlike=-1)))  # (no cosine is under -1)
    assert all(f == {0: 2, 1: 1} for f in unchecked[25:])  # by motion alone the trade lasts


def test_a_track_that_took_a_lost_object_s_box_gives_it_back():
    ids, exchanged = meet_and_turn(TrackerOptions(), blue_hidden_after=True)
    assert all(f == {0: 2} for f in ids[26:29])  # the blue disc's track took the red disc's box, red's is lost
    assert all(f == {0: 1} for f in ids[29:])  # frame 30, a check: the red disc's box goes back to its lost track
    assert [t for t, pairs in enumerate(exchanged) if pairs] == [29] and exchanged[29] == [[1, 2]]
    unchecked, _ = meet_and_turn(TrackerOptions(appearance=LookOptions(unlike=-1)), blue_hidden_after=True)
    assert all(f == {0: 2} for f in unchecked[26:])


def test_a_trade_is_put_right_when_a_third_object_looks_even_more_like_each_box(monkeypatch):
    """Tracks 0 and 1 traded objects P and Q; tracks 2 and 3 follow, far away, objects of colours a little nearer to
    Q's and P's than the traded tracks learnt. Each traded box looks most like a distractor, which holds its own box;
    the next most alike is the other traded track, which holds a box like the first and unlike itself: the trade."""
    p, q, x, w = np.eye(appearance.SIZE, dtype=np.float32)[:4]

    def unit(v):
        return v / np.linalg.norm(v)

    box_colours = [q, p, unit(q + 0.1 * w), unit(p + 0.1 * x)]  # what tracks 0-3 hold now: 0 and 1 traded
    monkeypatch.setattr(appearance, "colours", lambda image, xyxy, **kw: np.stack([box_colours[int(b[0]) // 100] for b in xyxy]))
    looks = Looks()
    looks.add(4)
    looks.models[:] = [unit(p + 0.4 * x), unit(q + 0.4 * w), unit(q + 0.1 * w), unit(p + 0.1 * x)]
    looks.mixed[:2] = True  # the traded tracks were in doubt where the boxes crossed
    boxes = np.asarray([[100 * k, 0, 100 * k + 40, 40] for k in range(4)], float)  # apart: every box clear
    looks.frame(np.zeros((100, 400, 3), np.uint8), boxes)
    tracks = np.arange(4)
    assert looks.models[2] @ q > looks.models[1] @ q > LookOptions().reid  # (the distractors: most alike)
    assert looks.models[3] @ p > looks.models[0] @ p > LookOptions().reid
    assert looks.mistaken(tracks, tracks, frame=10, lost=np.zeros(4, bool)) == [(0, 1)]
    assert looks.mistaken(tracks, tracks, frame=11, lost=np.zeros(4, bool)) == []  # (checks on learning turns only)
