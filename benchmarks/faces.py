"""Face detectors side by side on the same frames: OpenCV's Haar cascade and MediaPipe's BlazeFace short range
(``--face-detector blazeface``, 128 px) and back-camera model (``blazeface-back``, 256 px, edgecv's default), each
with its defaults, as ``edgecv run`` creates them.

Frame sets:
  - ``face demo``: every frame of the README's face demo video (``sample face-demo``: generated people filmed in
    real photos), one face each, its box known;
  - ``LFW on photos``: scikit-image's ``lfw_subset`` faces (real people, 25 px grey crops) pasted at 48-112 px into
    scikit-image's photos without people, 2 per 320x240 frame, their boxes known;
  - ``LFW non-faces``: the subset's 100 non-face crops pasted the same way (every box found is a false positive);
  - ``astronaut``: scikit-image's astronaut photo (one face; box checked by eye, see ``ASTRONAUT``).

A face counts as found when a box overlaps it by IoU >= 0.3 (the crops are tight around the face, detectors'
boxes are not); every other box is a false positive (the backgrounds are photos without people in them).
Latency: p50 of ``detect`` per frame, one thread.

    python benchmarks/faces.py [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgecv.data.faces import write_face_demo
from edgecv.data.samples import background_photos
from edgecv.runtime.faces.detect import create_face_detector
from edgecv.runtime.track.matching import iou_matrix

ASTRONAUT = [175, 75, 275, 185]  # xyxy of the face in skimage.data.astronaut(), checked by eye
SIZE = (320, 240)


def demo_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    with tempfile.TemporaryDirectory() as tmp:
        info = write_face_demo(tmp)
        cap = cv2.VideoCapture(str(Path(tmp) / "video.avi"))
        frames = []
        for box in info["face_boxes"]:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append((frame, np.float32([box])))
        cap.release()
    return frames


def pasted(crops: np.ndarray, rng: np.random.Generator, per_frame: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each crop (grey, [0, 1]) resized to 48-112 px and pasted into a photo without people, ``per_frame`` a frame
    side by side; the boxes are where they went."""
    photos = background_photos(people=False)
    w, h = SIZE
    frames = []
    for start in range(0, len(crops), per_frame):
        photo = photos[rng.integers(len(photos))]
        frame = cv2.cvtColor(cv2.resize(photo, SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
        boxes = []
        for k, crop in enumerate(crops[start : start + per_frame]):
            side = int(rng.integers(48, 113))
            x = int(rng.integers(k * w // per_frame, (k + 1) * w // per_frame - side + 1))
            y = int(rng.integers(0, h - side + 1))
            face = cv2.resize((crop * 255).astype(np.uint8), (side, side), interpolation=cv2.INTER_CUBIC)
            frame[y : y + side, x : x + side] = face[:, :, None]
            boxes.append([x, y, x + side, y + side])
        frames.append((frame, np.float32(boxes)))
    return frames


def score(detector, frames) -> dict[str, float]:
    found = total = false = 0
    times = []
    for frame, truth in frames:
        t0 = time.perf_counter()
        boxes = detector.detect(frame)
        times.append(time.perf_counter() - t0)
        got = np.asarray([b.xyxy for b in boxes], np.float32).reshape(-1, 4)
        hit = np.zeros(len(got), bool)
        if len(truth) and len(got):
            iou = iou_matrix(truth, got)
            for i in range(len(truth)):  # each face takes its best box, a box counts once
                j = int(np.argmax(np.where(hit, -1, iou[i])))
                if iou[i, j] >= 0.3 and not hit[j]:
                    hit[j], found = True, found + 1
        total += len(truth)
        false += int((~hit).sum())
    return {
        "recall": found / total if total else float("nan"),
        "found": found,
        "faces": total,
        "false": false,
        "frames": len(frames),
        "p50_ms": float(np.median(times) * 1e3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import skimage.data

    rng = np.random.default_rng(args.seed)
    lfw = skimage.data.lfw_subset()  # 100 faces, then 100 non-faces
    sets = {
        "face demo": demo_frames(),
        "LFW on photos": pasted(lfw[:100], rng),
        "LFW non-faces": [(f, np.zeros((0, 4), np.float32)) for f, _ in pasted(lfw[100:], rng)],
        "astronaut": [(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), np.float32([ASTRONAUT]))],
    }
    detectors = {name: create_face_detector(name) for name in ("haar", "blazeface", "blazeface-back")}
    print(f"{'frames':<16} {'detector':<14} {'found':>10} {'recall':>7} {'false boxes':>12} {'p50 ms':>7}")
    for name, frames in sets.items():
        for dname, det in detectors.items():
            r = score(det, frames)
            found = f"{r['found']}/{r['faces']}" if r["faces"] else "-"
            recall = f"{r['recall']:.3f}" if r["faces"] else "-"
            print(f"{name:<16} {dname:<14} {found:>10} {recall:>7} {r['false']:>5} / {r['frames']:<4} {r['p50_ms']:>7.2f}")


if __name__ == "__main__":
    main()
