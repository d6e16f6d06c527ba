"""Face datasets: one folder per identity of face crops, split with DISJOINT identities (the test and val people
are never seen in training, as in real verification), plus the built-in generated identities.

No face set with several photos per person installs here, so the sample is honest synthetic people: each identity
is a fixed set of traits (face and hair shape and colour, eye spacing and colour, brows, nose, mouth, glasses,
beard) and every photo of it varies only the nuisances (pose, scale, lighting, blur, noise, expression, a real
photo as background). Chips are cut by the runtime's own face detector and cropper, exactly as the device cuts them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecv.data.imagefolder import scan_imagefolder
from edgecv.data.splits import SPLITS, Split, _readable
from edgecv.errors import EdgecvError
from edgecv.runtime.faces import DEFAULT_DETECTOR


def identity_split(root: str | Path, test: float, val: float, seed: int, min_images: int = 2, workers: int = 4) -> Split:
    """Random, seeded split of the IDENTITIES (every image of a person lands in the same split); identities with
    fewer than ``min_images`` readable images are left out and listed in ``skipped``."""
    folder = scan_imagefolder(root)
    keep, skipped = _readable(folder, workers)
    labels = np.asarray(folder.labels, np.int64)[keep]
    files = np.asarray(folder.files, dtype=object)[keep]
    counts = np.bincount(labels, minlength=len(folder.classes))
    for c in np.flatnonzero(counts < min_images):
        skipped.append(
            {"file": folder.classes[c] + "/", "reason": f"identity has {counts[c]} readable image(s) (< {min_images})"}
        )
    ids = np.flatnonzero(counts >= min_images)
    n = len(ids)
    n_test = max(2, int(round(n * test)))
    n_val = max(2, int(round(n * val))) if val > 0 else 0
    if n - n_test - n_val < 2:
        raise EdgecvError(
            f"{root}: {n} identities with >= {min_images} images are too few to split into "
            f"train/val/test by identity (need at least {n_test + n_val + 2})"
        )
    ids = ids[np.random.default_rng(seed).permutation(n)]
    groups = {"test": ids[:n_test], "val": ids[n_test : n_test + n_val], "train": ids[n_test + n_val :]}
    idx = {s: np.flatnonzero(np.isin(labels, groups[s])) for s in SPLITS}
    return Split(
        root=str(folder.root),
        classes=list(folder.classes),
        seed=seed,
        fractions={"test": test, "val": val},
        files={s: files[idx[s]].tolist() for s in SPLITS},
        labels={s: labels[idx[s]].tolist() for s in SPLITS},
        skipped=skipped,
    )


# -- generated identities ------------------------------------------------------------------------------------------


def random_identity(rng: np.random.Generator) -> dict[str, Any]:
    """The traits that make a person (fixed across their photos)."""
    return dict(
        skin=rng.uniform([90, 120, 160], [190, 205, 245]),
        hair=rng.uniform(10, 130, 3),
        iris=rng.uniform(20, 150, 3),
        face_w=rng.uniform(0.29, 0.40),
        face_h=rng.uniform(0.42, 0.52),
        eye_dx=rng.uniform(0.115, 0.17),
        eye_y=rng.uniform(-0.08, 0.0),
        eye_r=rng.uniform(0.033, 0.05),
        brow=rng.uniform(0.0, 0.035),
        brow_tilt=rng.uniform(-0.03, 0.03),
        nose=rng.uniform(0.07, 0.15),
        mouth_w=rng.uniform(0.07, 0.15),
        mouth_y=rng.uniform(0.16, 0.24),
        hair_h=rng.uniform(0.04, 0.22),
        glasses=bool(rng.random() < 0.3),
        beard=bool(rng.random() < 0.25),
    )


def draw_face(canvas: np.ndarray, p: dict[str, Any], rng: np.random.Generator, cx: float, cy: float, s: float) -> None:
    """Draw identity ``p`` (BGR, in place) centred at (cx, cy), ``s`` pixels per face unit, with this photo's
    expression jitter."""

    def P(x: float, y: float) -> tuple[int, int]:
        return int(cx + x * s), int(cy + y * s)

    def L(v: float) -> int:
        return max(1, int(v * s))

    skin, hair = p["skin"], p["hair"]
    cv2.ellipse(canvas, P(0, -0.08), (L(p["face_w"] * 1.05), L(p["face_h"] * 0.8 + p["hair_h"])), 0, 180, 360, hair.tolist(), -1)
    cv2.ellipse(canvas, P(0, 0), (L(p["face_w"]), L(p["face_h"])), 0, 0, 360, skin.tolist(), -1)
    open_ = rng.uniform(0.8, 1.1)
    for sx in (-1, 1):
        ex, ey = sx * p["eye_dx"], p["eye_y"]
        cv2.ellipse(canvas, P(ex, ey - 0.01), (L(0.085), L(0.055)), 0, 0, 360, (skin * 0.72).tolist(), -1)  # socket shade
        cv2.ellipse(canvas, P(ex, ey), (L(p["eye_r"] * 1.6), L(p["eye_r"] * open_)), 0, 0, 360, (235, 235, 235), -1)
        cv2.circle(canvas, P(ex + rng.uniform(-0.008, 0.008), ey), L(p["eye_r"] * 0.8), p["iris"].tolist(), -1)
        cv2.circle(canvas, P(ex, ey), L(p["eye_r"] * 0.35), (10, 10, 10), -1)
        by = ey - 0.07 - p["brow"]
        cv2.line(
            canvas, P(ex - 0.06, by + sx * p["brow_tilt"]), P(ex + 0.06, by - sx * p["brow_tilt"]), (hair * 0.7).tolist(), L(0.02)
        )
        if p["glasses"]:
            cv2.circle(canvas, P(ex, ey), L(0.075), (20, 20, 20), L(0.012))
    cv2.line(canvas, P(0, p["eye_y"] - 0.02), P(0, p["nose"] * 0.8), np.minimum(skin * 1.12, 255).tolist(), L(0.03))
    cv2.line(canvas, P(0, 0), P(0.02, p["nose"]), (skin * 0.7).tolist(), L(0.015))
    cv2.ellipse(canvas, P(0, p["mouth_y"]), (L(p["mouth_w"] * rng.uniform(0.9, 1.1)), L(0.02)), 0, 0, 180, (60, 60, 150), -1)
    if p["beard"]:
        cv2.ellipse(canvas, P(0, p["mouth_y"] + 0.05), (L(p["face_w"] * 0.8), L(0.12)), 0, 0, 180, (hair * 0.8).tolist(), -1)


def face_scene(
    p: dict[str, Any],
    rng: np.random.Generator,
    background: np.ndarray,
    face_frac: float = 0.8,
    center: tuple[float, float] | None = None,
) -> np.ndarray:
    """One photo of identity ``p`` on ``background`` (BGR, copied): the face's height is about ``face_frac`` of
    the shorter side; pose, lighting, blur and noise vary per call."""
    h, w = background.shape[:2]
    s = min(h, w) * face_frac * rng.uniform(0.9, 1.1)
    cx, cy = center if center is not None else (w / 2, h / 2)
    cx, cy = cx + rng.uniform(-0.04, 0.04) * s, cy + rng.uniform(-0.03, 0.03) * s
    img = _with_face(p, rng, background, cx, cy, s)
    return _camera(img, rng, cx, cy, rng.uniform(-8, 8), rng.uniform(0.5, 1.2), rng.uniform(0.85, 1.15), rng.uniform(-8, 8))


def _with_face(p: dict[str, Any], rng: np.random.Generator, background: np.ndarray, cx: float, cy: float, s: float) -> np.ndarray:
    img = background.astype(np.float32).copy()
    draw_face(img, p, rng, cx, cy, s)
    return img


def _camera(
    img: np.ndarray, rng: np.random.Generator, cx: float, cy: float, angle: float, blur: float, gain: float, bias: float
) -> np.ndarray:
    """The photo as a camera takes it: head roll ``angle`` (degrees) about the face's centre, blur (sigma),
    exposure (``gain``, ``bias``) and sensor noise."""
    h, w = img.shape[:2]
    img = cv2.warpAffine(img, cv2.getRotationMatrix2D((cx, cy), angle, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT)
    img = cv2.GaussianBlur(img, (0, 0), blur)
    img = img * gain + bias + rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def face_clip(p: dict[str, Any], rng: np.random.Generator, background: np.ndarray, frames: int, face_frac: float = 0.6):
    """``frames`` consecutive video frames of identity ``p`` in one place (``background``), each with the face's
    box (the skin ellipse, xyxy): the face walks across part of the frame, turns its head slowly, the light drifts;
    expression and sensor noise vary per frame."""
    h, w = background.shape[:2]
    side = min(h, w)
    direction = rng.choice([-1.0, 1.0])
    x0, x1 = w / 2 - direction * rng.uniform(0.05, 0.15) * w, w / 2 + direction * rng.uniform(0.05, 0.15) * w
    y0 = h / 2 + rng.uniform(-0.05, 0.05) * h
    s0, s1 = (side * face_frac * rng.uniform(0.9, 1.1) for _ in range(2))
    roll, phase, blur = rng.uniform(3, 8), rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.1)
    g0, g1, b0, b1 = rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15), rng.uniform(-8, 8), rng.uniform(-8, 8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        cx, cy, s = x0 + (x1 - x0) * t, y0 + 0.02 * h * np.sin(6 * t), s0 + (s1 - s0) * t
        img = _with_face(p, rng, background, cx, cy, s)
        box = [
            round(float(v), 1) for v in (cx - p["face_w"] * s, cy - p["face_h"] * s, cx + p["face_w"] * s, cy + p["face_h"] * s)
        ]
        yield (
            _camera(
                img,
                rng,
                cx,
                cy,
                roll * np.sin(2 * np.pi * t + phase),
                blur + rng.uniform(0, 0.2),
                g0 + (g1 - g0) * t,
                b0 + (b1 - b0) * t,
            ),
            box,
        )


def write_faces_sample(
    out: str | Path,
    identities: int = 60,
    per_identity: int = 8,
    seed: int = 0,
    photo_size: int = 192,
    detector: str = DEFAULT_DETECTOR,
) -> Path:
    """``out/person_<k>/<i>.png``: face chips of generated people, cut from photos by the runtime's own face
    detector (``--face-detector``'s default unless told) and chip maker, exactly as the device cuts them (photos
    where it finds no single face are redrawn). Another detector frames the face otherwise (Haar's square crop,
    BlazeFace's chip aligned on its landmarks): an embedder sees best the framing it was trained on."""
    from edgecv.data.samples import background_photos, random_background
    from edgecv.runtime.faces.align import face_chip
    from edgecv.runtime.faces.detect import create_face_detector

    out, rng = Path(out), np.random.default_rng(seed)
    photos, det = background_photos(), create_face_detector(detector, min_size=photo_size // 4)
    for k in range(identities):
        person, folder = random_identity(rng), out / f"person_{k:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        written = 0
        for _ in range(per_identity * 10):
            bg = cv2.cvtColor(random_background(photos, photo_size, rng), cv2.COLOR_RGB2BGR)
            scene = face_scene(person, rng, bg)
            faces = det.detect(scene)
            if len(faces) != 1:
                continue
            cv2.imwrite(str(folder / f"{written:03d}.png"), face_chip(scene, faces[0]))
            written += 1
            if written == per_identity:
                break
    return out


def write_face_demo(
    out: str | Path,
    seed: int = 1000,
    enrolled: tuple[str, ...] = ("alice", "bob"),
    strangers: int = 2,
    photos_per_person: int = 5,
    frames_per_person: int = 24,
    frame_size: tuple[int, int] = (320, 240),
    fps: float = 8.0,
) -> dict[str, Any]:
    """A face-recognition demo of generated people never in a training sample (another seed): enrolment photos
    ``out/enroll/<name>/<i>.jpg`` (each a new photo: another place, pose and light) and ``out/video.avi`` where
    each enrolled person and each stranger in turn is filmed for ``frames_per_person`` frames in a place of
    their own (``face_clip``: moving, turning, the light drifting); ``out/truth.json`` says who is in which frame
    and where their face is."""
    from edgecv.data.samples import background_photos, random_background

    out, rng = Path(out), np.random.default_rng(seed)
    photos = background_photos()
    w, h = frame_size
    people = {name: random_identity(rng) for name in enrolled}
    people.update({f"stranger_{i}": random_identity(rng) for i in range(strangers)})

    def place(size: tuple[int, int]) -> np.ndarray:
        return cv2.cvtColor(cv2.resize(random_background(photos, max(size), rng), size), cv2.COLOR_RGB2BGR)

    n_photos = 0
    for name in enrolled:
        (out / "enroll" / name).mkdir(parents=True, exist_ok=True)
        for i in range(photos_per_person):
            photo = face_scene(people[name], rng, place((240, 240)), face_frac=0.6)
            cv2.imwrite(str(out / "enroll" / name / f"{i}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
            n_photos += 1
    writer = cv2.VideoWriter(str(out / "video.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    truth, boxes = [], []
    order = [n for pair in zip(enrolled, [f"stranger_{i}" for i in range(strangers)]) for n in pair]
    order += [n for n in people if n not in order]
    for name in order:
        for frame, box in face_clip(people[name], rng, place((w, h)), frames_per_person):
            writer.write(frame)
            truth.append(name if name in enrolled else None)
            boxes.append(box)
    writer.release()
    info = {
        "enrolled": list(enrolled),
        "strangers": strangers,
        "enroll_photos": n_photos,
        "frames": len(truth),
        "fps": fps,
        "truth": truth,
        "face_boxes": boxes,
    }
    (out / "truth.json").write_text(json.dumps(info, indent=1))
    return info
