"""The default detector recipe on the generated box set, end to end on this machine, in one run:

1. write the set (shapes on real photos, exact boxes, COCO layout) unless it exists: up to ``--max-objects`` 6
   shapes per image, and half the images busy scenes (``--occlusion`` 0.5: shapes overlapping, bars across them;
   a shape at least half visible keeps its whole box), as a real detector has seen occlusion; the tracking
   benchmark runs this detector;
2. `edgecv train recipes/detect_efficientnet_lite0.yaml` on it: wall time (target < 20 min on 2 cores) and test
   mAP50 (target >= 0.8) and mAP50-95, by pycocotools;
3. `edgecv export --int8` to ONNX and TFLite: each artifact's test mAP50 through the runtime's backends and NMS,
   and its drop against torch fp32 (target <= 1 point), as the export gate measured it.

  python benchmarks/detect.py [--images 600] [--out /tmp/edgecv-detect] [--epochs N] [--input-size 320] [--max-drop 1]
      [--max-objects 6] [--occlusion 0.5] [--formats onnx,tflite]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edgecv.data.samples import write_detect_sample
from edgecv.export.run import export_run
from edgecv.export.spec import ExportSpec
from edgecv.train.run import train

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "detect_efficientnet_lite0.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--out", default="/tmp/edgecv-detect")
    ap.add_argument("--epochs", type=int, help="head (and fine-tune, if on) epochs; default: the recipe's")
    ap.add_argument("--input-size", type=int, default=320)
    ap.add_argument("--calib-images", type=int, default=128)
    ap.add_argument("--max-drop", type=float, default=1.0, help="the int8 gate's budget in mAP50 points")
    ap.add_argument("--max-objects", type=int, default=6)
    ap.add_argument("--occlusion", type=float, default=0.5, help="the share of busy (occluded) images")
    ap.add_argument("--formats", default="onnx,tflite", help="what to export, comma-separated")
    args = ap.parse_args()
    out = Path(args.out)
    data = out / f"data-{args.images}-{args.input_size}-{args.max_objects}-{args.occlusion:g}"
    if not (data / "annotations.json").is_file():
        write_detect_sample(
            data, images=args.images, size=args.input_size, seed=0, max_objects=args.max_objects, occlusion=args.occlusion
        )
    t = time.perf_counter()
    run = train(
        str(RECIPE),
        data=str(data),
        epochs=args.epochs,
        out=str(out / "run"),
        overwrite=True,
        overrides=(f"data.input_size={args.input_size}",),
    )
    minutes = (time.perf_counter() - t) / 60
    m = run.metrics
    print(
        f"train: {minutes:.1f} min (target < 20)   test mAP50 {m['map50']:.4f} (target >= 0.8)   "
        f"mAP50-95 {m['map50_95']:.4f}   ({m['images']} test images)"
    )
    t = time.perf_counter()
    formats = tuple(args.formats.split(","))
    spec = ExportSpec(formats=formats, int8=True, calib_images=args.calib_images, max_drop=args.max_drop, threads=1)
    res = export_run(run.run_dir, spec)
    print(f"export: {(time.perf_counter() - t) / 60:.1f} min")
    print(f"{'artifact':<20} {'mAP50':>7} {'torch fp32':>11} {'drop pts':>9}  gate (target drop <= 1 point)")
    for r in res.rows:
        gate = r.get("gate") or {}
        kept = gate.get("float_layers") or []
        note = "-" if not gate else ("pass" if gate["passed"] else "FAIL") + (f", {len(kept)} layers float" if kept else "")
        print(f"{r['file']:<20} {r['value']:>7.4f} {r['reference']:>11.4f} {r['drop_points']:>9.2f}  {note}")
    print(
        json.dumps(
            {
                "train_minutes": minutes,
                "map50": m["map50"],
                "map50_95": m["map50_95"],
                "artifacts": {r["file"]: r["drop_points"] for r in res.rows},
            }
        )
    )


if __name__ == "__main__":
    main()
