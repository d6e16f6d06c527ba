"""Zones and lines over tracked boxes: enter/exit with dwell, crossings with direction, counts; zone files are
validated like recipes (file and field named)."""

import numpy as np
import pytest
import yaml

from edgecv.errors import RecipeError
from edgecv.results import Detections
from edgecv.runtime.analytics import Analytics, load_zones

SIZE = (200, 100)  # frame width, height


def zones_file(tmp_path, data) -> str:
    path = tmp_path / "zones.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def dets(*objects):
    """(track id, label, bottom-centre x, y) -> Detections of 10x20 boxes standing on those points."""
    if not objects:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), (), np.zeros(0, np.int64))
    xyxy = np.asarray([[x - 5, y - 20, x + 5, y] for _, _, x, y in objects], np.float32)
    return Detections(
        xyxy,
        np.full(len(objects), 0.9, np.float32),
        np.zeros(len(objects), np.int64),
        tuple(lb for _, lb, _, _ in objects),
        np.asarray([t for t, _, _, _ in objects], np.int64),
    )


@pytest.fixture
def analytics(tmp_path):
    spec = load_zones(
        zones_file(
            tmp_path,
            {
                "units": "normalized",
                "zones": [
                    {"name": "door", "polygon": [[0.25, 0.2], [0.5, 0.2], [0.5, 0.9], [0.25, 0.9]]},
                    {"name": "cars-only", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "classes": ["car"]},
                ],
                "lines": [{"name": "gate", "points": [[0.75, 0.0], [0.75, 0.6]]}],
            },
        )
    )
    return Analytics(spec, forget_s=1.0)


def walk(analytics, path, track=1, label="person", t0=0.0, fps=10):
    events = []
    for i, (x, y) in enumerate(path):
        events += analytics.observe(dets((track, label, x, y)), t0 + i / fps, SIZE)
    return events


def test_a_walk_through_the_door_zone_enters_and_exits_with_its_dwell(analytics):
    path = [(20 + 10 * i, 50) for i in range(12)]  # x 20 .. 130: inside the door (x 50..100) from x = 50 to 100
    events = walk(analytics, path)
    enter = [e for e in events if e["event"] == "zone_enter"]
    exit_ = [e for e in events if e["event"] == "zone_exit"]
    assert [(e["zone"], e["track_id"]) for e in enter] == [("door", 1)]  # cars-only ignores a person
    assert exit_[0]["zone"] == "door" and exit_[0]["dwell_s"] == pytest.approx(0.6) and "lost" not in exit_[0]
    counts = analytics.summary()
    assert counts["door"] == {"entered": {"person": 1}, "exited": {"person": 1}, "inside_now": 0}
    assert counts["cars-only"] == {"entered": {}, "exited": {}, "inside_now": 0}


def test_line_crossings_have_a_direction_and_need_the_segment(analytics):
    right = walk(analytics, [(130 + 5 * i, 40) for i in range(8)])  # through x = 150 at y 40 (segment: y 0..60)
    left = walk(analytics, [(170 - 5 * i, 40) for i in range(8)], t0=1.0)
    below = walk(analytics, [(130 + 5 * i, 90) for i in range(8)], track=2, t0=2.0)  # crosses the line's extension
    crosses = [e for e in right + left + below if e["event"] == "line_cross"]
    # walking from (150, 0) to (150, 60) (down the image), the left side is x > 150: rightwards is "out"
    assert [(e["direction"], e["track_id"]) for e in crosses] == [("out", 1), ("in", 1)]
    assert analytics.summary()["gate"] == {"in": {"person": 1}, "out": {"person": 1}}


def test_an_object_lost_inside_a_zone_leaves_it_after_forget_s(analytics):
    events = walk(analytics, [(60, 50), (62, 50)], track=7)
    events += analytics.observe(dets(), 0.5, SIZE)
    assert not [e for e in events if e["event"] == "zone_exit"]
    events = analytics.observe(dets((8, "person", 10, 10)), 1.5, SIZE)
    assert [(e["event"], e["track_id"], e.get("lost")) for e in events] == [("zone_exit", 7, True)]
    assert events[0]["dwell_s"] == pytest.approx(0.1)


def test_ids_the_tracker_puts_back_on_their_objects_cross_no_line_and_keep_their_zones(analytics):
    # two people walk side by side, 1 left of the gate line (x 150) inside the door, 2 right of it; the tracker
    # mixed them up for a while (each id on the other's box), then puts the ids back
    a, b = (1, "person", 80, 50), (2, "person", 170, 50)
    mixed_up = analytics.observe(dets((1, "person", 170, 50), (2, "person", 80, 50)), 0.0, SIZE)
    assert [(e["event"], e["track_id"]) for e in mixed_up] == [("zone_enter", 2)]  # id 2 on the one in the door
    analytics.exchange(1, 2)
    events = analytics.observe(dets(a, b), 0.1, SIZE)
    assert events == []  # no crossing, no exit or entry: the ids went back to where their objects were
    assert analytics.summary()["gate"] == {"in": {}, "out": {}} and analytics.summary()["door"]["inside_now"] == 1
    events = analytics.observe(dets((1, "person", 120, 50), b), 0.2, SIZE)  # 1 leaves the door, since 0.0
    assert [(e["event"], e["track_id"], e["dwell_s"]) for e in events] == [("zone_exit", 1, 0.2)]
    unrepaired = Analytics(analytics.spec, forget_s=1.0)  # without being told, the same frames cross the line twice
    unrepaired.observe(dets((1, "person", 170, 50), (2, "person", 80, 50)), 0.0, SIZE)
    events = unrepaired.observe(dets(a, b), 0.1, SIZE)
    assert sorted(e["event"] for e in events) == ["line_cross", "line_cross", "zone_enter", "zone_exit"]


@pytest.mark.parametrize(
    "data,message",
    [
        ({"zones": [{"name": "a", "polygon": [[0, 0], [1, 0], [1, 1]]}]}, "units: required field is missing"),
        ({"units": "normalized", "zones": [{"name": "a", "polygon": [[0, 0], [2, 0], [1, 1]]}]}, "lie in 0..1"),
        ({"units": "pixels", "zones": [{"name": "a", "polygon": [[0, 0], [1, 0]]}]}, "zones.0.polygon"),
        (
            {"units": "pixels", "lines": [{"name": "l", "points": [[0, 0], [1, 1]], "colour": "red"}]},
            "lines.0.colour: unknown key",
        ),
        ({"units": "pixels"}, "at least one zone or line"),
    ],
)
def test_bad_zone_files_name_the_file_and_field(tmp_path, data, message):
    path = zones_file(tmp_path, data)
    with pytest.raises(RecipeError, match=message) as err:
        load_zones(path)
    assert str(err.value).startswith(path)


def test_a_detector_stage_says_when_its_tracker_puts_ids_back_and_its_lines_count_only_real_crossings(tmp_path, monkeypatch):
    """The stage's wiring, on a real tracker and real zones (the detector's decoding replaced by the scene's boxes):
    a red and a blue disc meet and turn back (``meet_and_turn``), and the tracker gives their ids back on frame 39
    (from 0). A line at x = 210 that only the blue disc crosses (left on frame 13, right again on 38, under the red
    disc's id then): two crossings, and on frame 39 the ``track_exchange`` event and nothing else (the ids' jump
    back, told to the zones, crosses no line)."""
    from contextlib import ExitStack

    from edgecv.runtime.backends import create_backend
    from edgecv.runtime.sources import Frame
    from edgecv.runtime.stages import FrameJob, StageOptions, create_stage
    from tests.export.test_detect_export import brightness_detector
    from tests.runtime.track.test_appearance import BLUE, RED, photos, scene

    zones = zones_file(tmp_path, {"units": "pixels", "lines": [{"name": "fence", "points": [[210, 0], [210, 240]]}]})
    photo, events = photos(1)[0], []
    with ExitStack() as stack:
        backend = stack.enter_context(create_backend(brightness_detector(tmp_path / "blobs.onnx")))
        stage = create_stage(backend, StageOptions({"track": True, "zones": zones}), stack)
        monkeypatch.setattr(stage, "post", decoded := Decoded())
        for t in range(45):
            d = 4 * (t if t <= 25 else 50 - t)
            img, boxes = scene(photo, [(60 + d, 120, RED), (260 - d, 120, BLUE)])
            decoded.found = Detections(boxes.astype(np.float32), np.full(2, 0.9, np.float32), np.zeros(2, np.int64), ("b", "b"))
            _, said = stage.finish(FrameJob(Frame(img, t, float(t)), np.zeros(0), None, outputs=[]))
            events += [(t, e["event"], e.get("track_ids", e.get("track_id"))) for e in said]
    assert events == [(13, "line_cross", 2), (38, "line_cross", 1), (39, "track_exchange", [1, 2])], events


class Decoded:
    """A detector's post-processing that returns the boxes it is given (``found``), as the stage's ``post``."""

    found: Detections | None = None

    def to_canonical(self, outputs, meta):
        return outputs

    def __call__(self, *args, **kwargs):
        return self.found
