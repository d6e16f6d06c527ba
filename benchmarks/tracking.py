"""Tracking measured on videos with known trajectories: ByteTrack (edgecv's) vs a plain IoU-matching baseline, on
the same detections of the same detector artifact, scored by TrackEval's CLEAR (MOTA, ID switches) and Identity
(IDF1) metrics.

Videos: the detector's own shapes moving over a real photo (constant velocity, bouncing off the edges, paths that
cross), with a grey pillar they pass behind (brief full occlusions); ground truth is every drawn shape's exact
box and id, left out of the ground truth while more than half of it is behind the pillar. The detector runs once
per frame through the device's stage (letterbox, backend, NMS; ``--conf`` as ``edgecv run``'s default); both
trackers get the same boxes. The baseline: each box takes the id of the previous frame's box of its class it
overlaps most (IoU >= 0.3, greedy), or a new id; no motion model, no low-score boxes, no memory of lost objects.
Also prints the tracker's own cost per frame (p50) at 10 and 100 objects.

Targets: IDF1 >= 0.9, ID switches <= 1 per 10 ground-truth tracks, p50 < 0.5 ms at 100 objects.

    python benchmarks/tracking.py [--model /tmp/edgecv-detect/run/export/model_int8.onnx] [--sequences 3]
        (the model: ``python benchmarks/detect.py`` first; needs ``pip install --no-deps trackeval``)
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from edgecv.data.samples import SHAPES, background_photos, draw_shape, random_background, random_color
from edgecv.runtime.backends import create_backend
from edgecv.runtime.sources import Frame
from edgecv.runtime.stages import StageOptions, create_stage, detector_tracker
from edgecv.runtime.telemetry import Telemetry
from edgecv.runtime.track import ByteTracker
from edgecv.runtime.track.bytetrack import greedy_match, iou_matrix

SIZE = 320


def sequence(rng, photos, classes: list[str], objects: int, frames: int):
    """Frames (BGR) and, per frame, ground-truth (ids, xyxy) of the visible objects."""
    import cv2

    background = random_background(photos, SIZE, rng)
    r = rng.uniform(0.07, 0.11, objects) * SIZE
    pos = np.stack([rng.uniform(r + 2, SIZE - r - 2), rng.uniform(r + 2, SIZE - r - 2)], 1)
    speed = rng.uniform(1.0, 3.0, objects)
    angle = rng.uniform(0, 2 * np.pi, objects)
    vel = np.stack([np.cos(angle), np.sin(angle)], 1) * speed[:, None]
    kinds = [classes[int(k)] for k in rng.integers(len(classes), size=objects)]
    colors = [random_color(rng, background) for _ in range(objects)]
    spin = rng.uniform(0, 2 * np.pi, objects)
    pillar = (int(SIZE * 0.45), int(SIZE * 0.53))  # x range of the occluder
    out = []
    for _ in range(frames):
        img = background.copy()
        boxes = [draw_shape(img, kinds[k], pos[k, 0], pos[k, 1], r[k], spin[k], colors[k]) for k in range(objects)]
        img[:, pillar[0]:pillar[1]] = (128, 128, 128)
        ids, xyxy = [], []
        for k, b in enumerate(boxes):
            hidden = max(0.0, min(b[2], pillar[1]) - max(b[0], pillar[0])) / max(b[2] - b[0], 1e-6)
            if hidden <= 0.5:
                ids.append(k)
                xyxy.append(b)
        out.append((cv2.cvtColor(img, cv2.COLOR_RGB2BGR), np.asarray(ids, int), np.asarray(xyxy, float).reshape(-1, 4)))
        pos += vel
        for axis in (0, 1):  # bounce
            low, high = pos[:, axis] < r + 1, pos[:, axis] > SIZE - r - 1
            vel[low | high, axis] *= -1
            pos[:, axis] = np.clip(pos[:, axis], r + 1, SIZE - r - 1)
    return out


class IouBaseline:
    """Frame-to-frame IoU matching, per class: the simplest tracker."""

    def __init__(self, iou: float = 0.3):
        self.iou, self.boxes, self.ids, self.cls, self.next = iou, np.zeros((0, 4)), np.zeros(0, int), np.zeros(0, int), 1

    def update(self, xyxy, scores, cls):
        cost = 1 - iou_matrix(self.boxes, xyxy)
        cost[self.cls[:, None] != cls[None, :]] = np.inf
        r, c = greedy_match(cost, 1 - self.iou)
        ids = np.zeros(len(xyxy), int)
        ids[c] = self.ids[r]
        new = ids == 0
        ids[new] = np.arange(self.next, self.next + new.sum())
        self.next += int(new.sum())
        self.boxes, self.ids, self.cls = xyxy, ids, cls
        return np.arange(len(xyxy)), ids


def score(gt, tracked) -> dict[str, float]:
    """TrackEval CLEAR + Identity over one sequence: ``gt`` and ``tracked`` are per-frame (ids, xyxy)."""
    from trackeval.metrics import CLEAR, Identity

    gt_map = {g: i for i, g in enumerate(sorted({int(x) for ids, _ in gt for x in ids}))}
    tr_map = {t: i for i, t in enumerate(sorted({int(x) for ids, _ in tracked for x in ids}))}
    data = {"num_timesteps": len(gt), "num_gt_ids": len(gt_map), "num_tracker_ids": len(tr_map),
            "num_gt_dets": sum(len(i) for i, _ in gt), "num_tracker_dets": sum(len(i) for i, _ in tracked),
            "gt_ids": [np.asarray([gt_map[int(x)] for x in ids], int) for ids, _ in gt],
            "tracker_ids": [np.asarray([tr_map[int(x)] for x in ids], int) for ids, _ in tracked],
            "similarity_scores": [iou_matrix(g, t) for (_, g), (_, t) in zip(gt, tracked)]}
    clear, identity = CLEAR(), Identity()
    res = {**clear.eval_sequence(data), **identity.eval_sequence(data)}
    return {"MOTA": float(res["MOTA"]), "IDF1": float(res["IDF1"]), "IDSW": int(res["IDSW"]), "tracks": len(gt_map)}


def cost_p50(objects: int, frames: int = 300, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0, 1900, (objects, 2))
    vel = rng.normal(0, 3, (objects, 2))
    tracker, times = ByteTracker(), []
    for t in range(frames):
        p = centre + vel * t
        boxes = np.concatenate([p - 15, p + 15], 1) + rng.normal(0, 1, (objects, 4))
        scores = rng.uniform(0.3, 1.0, objects)
        t0 = time.perf_counter()
        tracker.update(boxes, scores, np.zeros(objects, int))
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("/tmp/edgecv-detect/run/export/model_int8.onnx"))
    ap.add_argument("--sequences", type=int, default=3)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--objects", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"{args.model}: not found; run `python benchmarks/detect.py` first (or pass --model)")
    rng, photos = np.random.default_rng(args.seed), background_photos()
    totals = {"ByteTrack (edgecv)": [], "IoU matching (baseline)": []}
    with ExitStack() as stack:
        backend = stack.enter_context(create_backend(args.model, threads=1))
        classes = [c for c in backend.meta.labels if c in SHAPES] or list(SHAPES)
        # the raw detections down to 0.1 (the tracker's low threshold); each tracker filters what it takes
        stage = create_stage(backend, StageOptions({"track": False, "conf": 0.1}, str(args.model)), stack)
        tel = Telemetry()
        for s in range(args.sequences):
            seq = sequence(rng, photos, classes, args.objects, args.frames)
            detections = []
            for n, (bgr, _, _) in enumerate(seq):
                job = stage.prepare(Frame(bgr, n, time.monotonic(), pts=n / 30), tel)
                stage.infer(job)
                detections.append(stage.finish(job)[0])
            gt = [(ids, xyxy) for _, ids, xyxy in seq]
            for name, tracker in (("ByteTrack (edgecv)", detector_tracker()),
                                  ("IoU matching (baseline)", IouBaseline())):
                out = []
                for det in detections:
                    keep = det.scores >= (0.1 if "Byte" in name else 0.25)
                    xyxy, sc, cl = det.xyxy[keep], det.scores[keep], det.class_ids[keep]
                    index, ids = tracker.update(xyxy.astype(float), sc, cl)
                    out.append((np.asarray(ids, int), xyxy[index].astype(float)))
                m = score(gt, out)
                totals[name].append(m)
                print(f"  sequence {s}: {name:<24} MOTA {m['MOTA']:.3f}  IDF1 {m['IDF1']:.3f}  ID switches "
                      f"{m['IDSW']}  ({m['tracks']} tracks)")
    print()
    print(f"{args.model.name}: {args.sequences} sequences x {args.frames} frames, {args.objects} objects, {SIZE} px")
    print(f"{'tracker':<26} {'MOTA':>6} {'IDF1':>6} {'ID sw':>6} {'sw/10 tracks':>13}")
    for name, rows in totals.items():
        tracks = sum(r["tracks"] for r in rows)
        sw = sum(r["IDSW"] for r in rows)
        print(f"{name:<26} {np.mean([r['MOTA'] for r in rows]):>6.3f} {np.mean([r['IDF1'] for r in rows]):>6.3f} "
              f"{sw:>6} {10 * sw / max(tracks, 1):>13.2f}")
    print(f"ByteTrack cost per frame: p50 {cost_p50(10):.3f} ms at 10 objects, {cost_p50(100):.3f} ms at 100 "
          "(target < 0.5 ms)")


if __name__ == "__main__":
    main()
