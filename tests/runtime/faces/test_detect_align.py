"""Face detection (the bundled Haar cascade on generated faces), chips, 5-point alignment, enrolment shot checks,
face events and the Faces result."""

import cv2
import numpy as np
import pytest

from edgecv.errors import EdgecvError
from edgecv.results import Faces
from edgecv.runtime.faces.align import TEMPLATE, align_face, crop_face, sharpness
from edgecv.runtime.faces.box import FaceBox
from edgecv.runtime.faces.detect import create_face_detector
from edgecv.runtime.faces.enroll import check_shot
from edgecv.runtime.faces.events import FaceEvents


@pytest.fixture(scope="module")
def scenes():
    """Generated people on real photos (the sample's generator), with the face centre known."""
    from edgecv.data.faces import face_scene, random_identity
    from edgecv.data.samples import background_photos, random_background

    rng, photos = np.random.default_rng(7), background_photos()
    out = []
    for _ in range(20):
        bg = cv2.cvtColor(random_background(photos, 240, rng), cv2.COLOR_RGB2BGR)
        out.append(face_scene(random_identity(rng), rng, bg, face_frac=0.6))
    return out


def test_haar_finds_one_face_near_the_centre_of_most_generated_photos(scenes):
    det = create_face_detector("haar")
    found = [det.detect(s) for s in scenes]
    single = [f[0] for f in found if len(f) == 1]
    assert len(single) >= 15, [len(f) for f in found]
    for face in single:
        cx, cy = (face.xyxy[:2] + face.xyxy[2:]) / 2
        assert abs(cx - 120) < 30 and abs(cy - 120) < 30 and 60 < face.size < 200


def test_crop_face_is_the_box_scaled_to_the_chip():
    img = np.zeros((100, 200, 3), np.uint8)
    img[20:60, 50:90] = 255  # a 40 px square "face"
    chip = crop_face(img, np.float32([50, 20, 90, 60]), size=80, margin=0.0)
    assert chip.shape == (80, 80, 3) and chip[2:-2, 2:-2].min() == 255
    chip = crop_face(img, np.float32([50, 20, 90, 60]), size=80, margin=0.5)  # side 80 px around the centre
    assert chip[20:60, 20:60].min() == 255 and chip[5, 5].max() == 0
    edge = crop_face(img, np.float32([0, 0, 40, 40]), size=40, margin=0.5)  # outside the frame: border replicated
    assert edge.shape == (40, 40, 3)


def test_align_face_maps_landmarks_onto_the_template():
    rng = np.random.default_rng(0)
    angle, scale, shift = 0.3, 1.7, np.float32([40, 25])
    rot = scale * np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lm = (TEMPLATE * 112) @ rot.T + shift  # the template seen through a similarity transform
    img = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)
    for x, y in lm:
        cv2.circle(img, (int(round(x)), int(round(y))), 4, (0, 0, 255), -1)
    chip = align_face(img, lm, size=112)
    for x, y in TEMPLATE * 112:  # each landmark dot lands on its template position
        assert chip[int(round(y)), int(round(x))].tolist() == [0, 0, 255]


def test_enrolment_shots_are_rejected_with_the_reason(scenes):
    face = FaceBox(np.float32([60, 60, 180, 180]))
    sharp = scenes[0]
    assert check_shot(sharp, []).reason == "no face found"
    assert "2 faces" in check_shot(sharp, [face, face]).reason
    assert "too small" in check_shot(sharp, [FaceBox(np.float32([0, 0, 30, 30]))]).reason
    blurred = cv2.GaussianBlur(sharp, (0, 0), 6)
    assert sharpness(crop_face(blurred, face.xyxy)) < sharpness(crop_face(sharp, face.xyxy))
    assert "too blurry" in check_shot(blurred, [face]).reason
    ok = check_shot(sharp, [face])
    assert ok.reason is None and ok.chip.shape == (128, 128, 3)


def test_face_detector_specs():
    with pytest.raises(EdgecvError, match="yunet needs the model file"):
        create_face_detector("yunet")
    with pytest.raises(EdgecvError, match="not found"):
        create_face_detector("yunet:/nope.onnx")
    with pytest.raises(EdgecvError, match="expected haar"):
        create_face_detector("mtcnn")


def test_face_events_follow_people_with_a_cooldown():
    def faces(*names):
        n = len(names)
        return Faces(np.zeros((n, 4), np.float32), names, np.full(n, 0.7, np.float32), names)

    ev = FaceEvents(cooldown_s=5)
    assert [e["event"] for e in ev(faces("ann", None), 0, 0.0)] == ["known_face", "unknown_face"]
    assert ev(faces("ann"), 1, 1.0) == []  # ann again within the cooldown
    assert [e.get("name") for e in ev(faces("ann", "bo"), 2, 6.0)] == ["ann", "bo"]
    with pytest.raises(EdgecvError):
        Faces(np.zeros((2, 4), np.float32), ("a",), np.zeros(2, np.float32))
    d = faces("ann", None).to_dict()
    assert d["task"] == "embed" and [f["known"] for f in d["faces"]] == [True, False]


def test_an_edgecv_detector_artifact_can_be_the_face_detector(det_export):
    """Plumbing: a detector artifact's boxes (here the shapes detector's) come back as face boxes in frame
    pixels; a class that the artifact lacks is refused."""
    out, _ = det_export
    from edgecv.data.samples import background_photos, detect_image
    from edgecv.runtime.backends import create_backend

    model = out / "model_int8.onnx"
    labels = create_backend(model).meta.labels
    rgb, boxes, _ = detect_image(128, np.random.default_rng(3), background_photos())
    frame = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (256, 192))
    det = create_face_detector(str(model))
    faces = det.detect(frame)
    assert all(isinstance(f, FaceBox) and 0 <= f.xyxy[0] < f.xyxy[2] <= 256 and f.xyxy[3] <= 192 for f in faces)
    only = create_face_detector(f"{model}#{labels[0]}").detect(frame)
    assert len(only) <= len(faces)
    with pytest.raises(EdgecvError, match="has no class 'face'"):
        create_face_detector(f"{model}#face")
