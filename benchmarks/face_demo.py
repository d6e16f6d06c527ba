"""The README's face flow, scored: `edgecv sample face-demo`, `edgecv enroll` the two enrolled people,
`edgecv run MODEL --source demo/video.avi --gallery faces.db --events ...`, with face tracking (the default on
video) and without it (`--no-track`: every frame matched on its own, what edgecv did before tracking), against
the demo's ``truth.json`` (who is in which frame).

Per frame of an enrolled person where their face was found (a reported face centred in their true face box; a
false detection elsewhere is not them): named right, named wrong (another enrolled name), or called unknown. Per
frame of a stranger where their face was found: named (wrong) or unknown. Frames where the person's face was not
found are counted apart (the face detector's misses, not the matcher's).

Targets (issue 16): enrolled people named in >= 90% of their frames with a face found, 0 wrong names, 0 strangers
named.

    python benchmarks/face_demo.py [--model runs/faces/export/model_fp32.onnx] [--out /tmp/edgecv-face-demo]
        [--face-detector blazeface-back]
        (the model: the README's face commands, `edgecv train recipes/embed_efficientnet_lite0.yaml ...` and
        `edgecv export runs/faces --int8`)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from edgecv.runtime.faces import DEFAULT_DETECTOR


def edgecv(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "edgecv.cli", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"edgecv {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def on_face(face: dict, box: list[float]) -> bool:
    """Whether a reported face is the person's (its centre inside their true face box), not a false detection."""
    x1, y1, x2, y2 = face["xyxy"]
    return box[0] <= (x1 + x2) / 2 <= box[2] and box[1] <= (y1 + y2) / 2 <= box[3]


def score(events: Path, truth: list[str | None], boxes: list[list[float]]) -> dict[str, int]:
    """Counts over the frames, from the run's ``result`` events: only faces found on the person count."""
    faces = {}
    for line in events.read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "result":
            faces[e["frame"]] = e["faces"]
    c = dict(enrolled=0, found=0, right=0, wrong=0, unknown=0, strangers=0, strangers_found=0, strangers_named=0, no_face=0)
    for i, who in enumerate(truth):
        names = [f["name"] for f in faces.get(i, []) if on_face(f, boxes[i])]
        if not names:
            c["no_face"] += 1
        if who is None:
            c["strangers"] += 1
            c["strangers_found"] += bool(names)
            c["strangers_named"] += any(n is not None for n in names)
            continue
        c["enrolled"] += 1
        if not names:
            continue
        c["found"] += 1
        if who in names:
            c["right"] += 1
        elif any(n is not None for n in names):
            c["wrong"] += 1
        else:
            c["unknown"] += 1
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("runs/faces/export/model_fp32.onnx"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/edgecv-face-demo"))
    ap.add_argument("--face-detector", default=DEFAULT_DETECTOR, help="for enrolment and the runs (as `edgecv run`)")
    args = ap.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"{args.model}: not found; run the README's face commands first (or pass --model)")
    if args.out.exists():
        shutil.rmtree(args.out)
    demo = args.out / "demo"
    edgecv("sample", "face-demo", str(demo))
    info = json.loads((demo / "truth.json").read_text())
    gallery = args.out / "faces.db"
    for name in info["enrolled"]:
        edgecv(
            "enroll",
            "--gallery",
            str(gallery),
            "--model",
            str(args.model),
            "--name",
            name,
            "--face-detector",
            args.face_detector,
            *sorted(str(p) for p in (demo / "enroll" / name).glob("*.jpg")),
        )
    rows = {}
    for label, extra in (("tracked (default)", []), ("per frame (--no-track)", ["--no-track"])):
        events, telemetry = args.out / f"events{len(rows)}.jsonl", args.out / f"telemetry{len(rows)}.json"
        edgecv(
            "run",
            str(args.model),
            "--source",
            str(demo / "video.avi"),
            "--gallery",
            str(gallery),
            "--events",
            str(events),
            "--telemetry",
            str(telemetry),
            "--face-detector",
            args.face_detector,
            *extra,
        )
        rows[label] = score(events, info["truth"], info["face_boxes"])
        rows[label]["fps"] = json.loads(telemetry.read_text())["fps"]
    n = len(info["truth"])
    per_person = info["frames"] // (len(info["enrolled"]) + info["strangers"])
    print(
        f"{args.model.name}, face detector {args.face_detector}: demo video {n} frames ({per_person}"
        f" per person, {len(info['enrolled'])} enrolled, {info['strangers']} strangers), gallery of "
        f"{info['enroll_photos']} photos"
    )
    print(f"{'matching':<24} {'named right':>16} {'wrong':>6} {'unknown':>8} {'strangers named':>16} {'no face':>8} {'FPS':>6}")
    for label, c in rows.items():
        right = f"{c['right']}/{c['found']} ({100 * c['right'] / max(c['found'], 1):.0f}%)"
        print(
            f"{label:<24} {right:>16} {c['wrong']:>6} {c['unknown']:>8} "
            f"{c['strangers_named']:>5}/{c['strangers_found']:<10} {c['no_face']:>8} {c['fps']:>6.1f}"
        )
    c = rows["tracked (default)"]
    ok = c["right"] >= 0.9 * c["found"] and c["wrong"] == 0 and c["strangers_named"] == 0
    print("targets (>= 90% named, 0 wrong, 0 strangers named):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
