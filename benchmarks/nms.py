"""edgecv's on-device NMS (no torch) vs torchvision.ops, side by side in one run.

Boxes are clustered around objects the way a detector proposes them (n boxes jittered around 50 objects, 90% of
them of the object's class: a detector's raw output before its score threshold), with random scores;
class-agnostic (vs torchvision.ops.nms) and class-aware with 80 classes (vs torchvision.ops.batched_nms).
Prints p50 ms per call and edgecv / torchvision (target <= 1.2x, < 1 ms at 10k);
edgecv runs onnxruntime's NonMaxSuppression kernel (two passes past 3k boxes: edgecv/runtime/postprocess/nms.py),
and its numpy fallback (a device without onnxruntime) is timed beside it.

    python benchmarks/nms.py [--sizes 1000,10000] [--runs 200]
"""

from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
import torch
import torchvision
from _timing import p50_ms

from edgecv.runtime.postprocess import nms
from edgecv.runtime.postprocess.nms import nms_xyxy


def proposals(n: int, objects: int = 50, seed: int = 0, classes: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 640, (objects, 2))
    sizes = rng.uniform(10, 200, (objects, 2))
    k = rng.integers(0, objects, n)
    c = centres[k] + rng.normal(0, 0.1, (n, 2)) * sizes[k]
    s = sizes[k] * rng.uniform(0.8, 1.25, (n, 2))
    xyxy = np.concatenate([c - s / 2, c + s / 2], 1).astype(np.float32)
    object_class = rng.integers(0, classes, objects)
    # most proposals of an object agree on its class; a few (10%) are confused with another class
    cls = np.where(rng.uniform(size=n) < 0.9, object_class[k], rng.integers(0, classes, n))
    return xyxy, rng.uniform(0.05, 1.0, n).astype(np.float32), cls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--iou", type=float, default=0.45)
    ap.add_argument("--objects", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(
        f"{'boxes':>6} {'mode':<12} {'edgecv ms':>10} {'torchvision ms':>15} {'ratio':>7} {'same kept':>10} "
        f"{'numpy fallback ms':>18}"
    )
    for n in map(int, args.sizes.split(",")):
        xyxy, scores, cls = proposals(n, args.objects)
        tb, ts, tc = torch.from_numpy(xyxy), torch.from_numpy(scores), torch.from_numpy(cls)
        zeros = np.zeros(n, np.int64)
        cases = {
            "agnostic": (
                lambda: nms_xyxy(xyxy, scores, zeros, args.iou, max_det=n),
                lambda: torchvision.ops.nms(tb, ts, args.iou),
            ),
            "class-aware": (
                lambda: nms_xyxy(xyxy, scores, cls, args.iou, max_det=n),
                lambda: torchvision.ops.batched_nms(tb, ts, tc, args.iou),
            ),
        }
        for mode, (ours, theirs) in cases.items():
            same = ours().tolist() == theirs().tolist()
            a, b = p50_ms(ours, args.runs), p50_ms(theirs, args.runs)
            with mock.patch.object(nms, "_ort_nms", lambda: None):
                same &= ours().tolist() == theirs().tolist()
                c = p50_ms(ours, max(3, args.runs // 10))
            print(f"{n:>6} {mode:<12} {a:>10.3f} {b:>15.3f} {a / b:>6.2f}x {str(same):>10} {c:>18.3f}")


if __name__ == "__main__":
    main()
