"""The NMS, pipeline-overhead, multistream and other runtime benchmarks run (shrunk to seconds); their figures come
from full runs."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args, timeout=240):
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_nms_benchmark_prints_ratios_and_agrees_with_torchvision():
    out = run([ROOT / "benchmarks" / "nms.py", "--sizes", "300", "--runs", "3"])
    rows = re.findall(r"^\s+300 (agnostic|class-aware)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+(True|False)\s+([\d.]+)$", out, re.M)
    assert [r[0] for r in rows] == ["agnostic", "class-aware"] and all(r[4] == "True" for r in rows), out


def test_pipeline_overhead_prints_e2e_against_the_compute_bound_limit(tiny_export, det_export, shapes_video):
    out = run(
        [
            ROOT / "benchmarks" / "pipeline_overhead.py",
            "--video",
            shapes_video,
            "--classifier",
            tiny_export[0] / "model_int8.onnx",
            "--detector",
            det_export[0] / "model_int8.onnx",
            "--max-frames",
            "20",
            "--rounds",
            "2",
        ]
    )
    heads = re.findall(r"^model_int8.onnx \((classify|detect)\) on \S+, (\d+) frames, (\d+) cores", out, re.M)
    assert [(h[0], h[1]) for h in heads] == [("classify", "20"), ("detect", "20")], out
    costs = [
        (dict(re.findall(r"(\w+) ([\d.]+)", line.split("=")[0])), float(line.rsplit("=", 1)[1]))
        for line in re.findall(r"^  CPU ms a frame, each step alone: (.*)$", out, re.M)
    ]
    assert len(costs) == 2, out
    for steps, total in costs:
        assert list(steps) == ["decode", "preprocess", "infer", "postprocess", "drift", "sinks"], out
        assert abs(sum(map(float, steps.values())) - total) <= 0.005 * (len(steps) + 1) + 1e-9, out  # each rounded
        assert float(steps["infer"]) > 0, out
    cores = int(heads[0][2])
    limits = [float(v) for v in re.findall(rf"^  compute-bound limit \({cores} cores / the sum\)\s+([\d.]+)\s*$", out, re.M)]
    # each figure is a median over rounds: the limit's (per round) and the costs' (per step) agree to rounding
    assert len(limits) == 2 and all(0.67 < v / (cores / (t / 1e3)) < 1.5 for v, (_, t) in zip(limits, costs)), out
    runs = re.findall(r"^  edgecv run --events(?: --workers 1)? \((.*?)\)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+-[\d.]+$", out, re.M)
    assert len(runs) == 4 and all(float(r[1]) > 0 and float(r[2]) > 0 for r in runs), out
    assert len(re.findall(r"^  target e2e >= 0.9 of the limit: (met|NOT met)$", out, re.M)) == 2, out
    peer = re.findall(r"^  target edgecv e2e >= 1.1x Ultralytics': (met|NOT met)$", out, re.M)
    absent = re.findall(r"^  Ultralytics: not importable here", out, re.M)
    assert (len(absent), len(peer)) == ((2, 0) if importlib.util.find_spec("ultralytics") is None else (0, 2)), out


def test_gallery_benchmark_prints_search_times_and_finds_the_right_person():
    out = run([ROOT / "benchmarks" / "gallery.py", "--sizes", "300,2000", "--runs", "5", "--loop-max", "300"])
    rows = re.findall(r"^\s+(\d+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\S+)\s+(True|False)$", out, re.M)
    assert [r[0] for r in rows] == ["300", "2000"] and all(r[5] == "True" for r in rows), out
    assert rows[0][4].endswith("x") and rows[1][3] == "-"  # the loop is timed only up to --loop-max


def test_drift_benchmark_is_quiet_on_still_scenes_and_alarms_on_a_change(tiny_run, tiny_export, tmp_path):
    out_dir, _ = tiny_export
    out = run(
        [
            ROOT / "benchmarks" / "drift.py",
            "--run",
            tiny_run,
            "--model",
            out_dir / "model_int8.onnx",
            "--minutes",
            "0.75",
            "--timeline",
            "35,12,15",
            "--vtest",
            tmp_path / "none.avi",
        ],
        timeout=300,
    )
    rows = {
        m[0].strip(): m[1:]
        for m in re.findall(
            r"^(static|montage|brightness x0.5)\s+[\d.]+\s+(\d+)\s+([\d.]+)"
            r"\s+(\S+(?: s)?)\s+(\S+(?: s)?)$",
            out,
            re.M,
        )
    }
    assert rows["static"][0] == "0" and rows["montage"][0] == "0", out
    alarm_after = rows["brightness x0.5"][2]
    assert alarm_after.endswith(" s") and float(alarm_after[:-2]) <= 10 and rows["brightness x0.5"][3] != "never", out


@pytest.mark.skipif(
    (shutil.which("ffmpeg") is None or shutil.which("rtsp-server-perl") is None) and not os.environ.get("CI"),
    reason="ffmpeg / rtsp-server-perl not installed (scripts/test.sh)",
)
def test_soak_benchmark_survives_a_server_restart(tiny_export, shapes_video, tmp_path):
    out_dir, _ = tiny_export
    out = run(
        [
            ROOT / "benchmarks" / "soak.py",
            "--logs",
            tmp_path / "soak",
            "--model",
            out_dir / "model_int8.onnx",
            "--video",
            shapes_video,
            "--minutes",
            "0.6",
            "--restarts",
            "1",
            "--down",
            "2",
            "--warmup",
            "5",
        ],
        timeout=180,
    )
    assert re.search(r"reconnects 1: after [\d.]+ s", out) and "0 broken" in out, out
    assert out.rstrip().endswith("PASS"), out
    assert f"(logs in {tmp_path / 'soak'})" in out and (tmp_path / "soak" / "run.log").is_file(), out


def test_tracking_benchmark_scores_bytetrack_the_baseline_and_supervision_with_trackeval(det_export):
    out_dir, _ = det_export
    out = run(
        [
            ROOT / "benchmarks" / "tracking.py",
            "--model",
            out_dir / "model_int8.onnx",
            "--sequences",
            "1",
            "--frames",
            "40",
            "--objects",
            "3",
        ],
        timeout=240,
    )
    rows = re.findall(
        r"^(ByteTrack \(edgecv\)|IoU matching \(baseline\)|supervision [\d.]+ ByteTrack|edgecv, boxes' objects known|"
        r"edgecv on the true boxes)\s+(-?[\d.]+)\s+"
        r"([\d.]+)\s+(\d+)\s+([\d.]+)$",
        out,
        re.M,
    )
    names = ["ByteTrack (edgecv)", "IoU matching (baseline)", "supervision 0.25.1 ByteTrack", "edgecv, boxes' objects known"]
    assert [r[0] for r in rows] == [*names, "edgecv on the true boxes"], out
    assert all(0 <= float(r[2]) <= 1 for r in rows), out  # IDF1 from TrackEval
    assert re.search(r"detector \(score >= 0.25\): finds [\d.]+ of the visible objects", out), out
    assert re.search(r"cost per frame: p50 [\d.]+ ms at 10 objects, [\d.]+ ms at 100; without colours", out), out
    said = re.search(r"targets \(edgecv's row\): IDF1 >= 0.9: ([\d.]+), (met|not met); ID switches <= 1 per 10", out)
    idf1 = float(rows[0][2])
    assert said and float(said[1]) == pytest.approx(idf1, abs=1e-3) and (said[2] == "met") == (idf1 >= 0.9), out


@pytest.mark.parametrize("detector", ["haar", "blazeface-back"])
def test_face_demo_benchmark_scores_tracked_and_per_frame_naming_against_the_truth(embed_export, tmp_path, detector):
    out_dir, _ = embed_export
    args = ["--model", out_dir / "model_int8.onnx", "--out", tmp_path / "fd", "--face-detector", detector]
    out = run([ROOT / "benchmarks" / "face_demo.py", *args], timeout=300)
    assert f"face detector {detector}:" in out, out
    rows = re.findall(
        r"^(tracked \(default\)|per frame \(--no-track\))\s+(\d+)/(\d+) \(\d+%\)\s+(\d+)\s+(\d+)\s+"
        r"(\d+)/(\d+)\s+(\d+)\s+([\d.]+)$",
        out,
        re.M,
    )
    assert [r[0] for r in rows] == ["tracked (default)", "per frame (--no-track)"], out
    for _, right, found, wrong, unknown, *_ in rows:  # every enrolled frame with a face is right, wrong or unknown
        assert int(right) + int(wrong) + int(unknown) == int(found), out
    assert re.search(r"targets \(>= 90% named, 0 wrong, 0 strangers named\): (met|NOT met)", out), out


def test_multistream_benchmark_prints_total_and_per_stream_fps_against_pure(tiny_export, det_export, shapes_video):
    out = run(
        [
            ROOT / "benchmarks" / "multistream.py",
            "--video",
            shapes_video,
            "--streams",
            "1,2",
            "--frames",
            "20",
            "--rounds",
            "1",
            "--classifier",
            tiny_export[0] / "model_int8.onnx",
            "--detector",
            det_export[0] / "model_int8.onnx",
        ]
    )
    rows = re.findall(
        r"^(classifier|detector) \S+\s+(\d) +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+) +[\d.]+-[\d.]+ +[\d.]+-[\d.]+"
        r" +(\S+) +[\d.]+ms +\d+ms +[\d.]+ +\(run (\d+)x1t; pure (\d+x\d+t b\d)\)$",
        out,
        re.M,
    )
    assert [(r[0], r[1]) for r in rows] == [("classifier", "1"), ("classifier", "2"), ("detector", "1"), ("detector", "2")], out
    assert [r[7] for r in rows] == ["20@1", "40@1"] * 2, out  # on a CPU one frame a call
    for r in rows:  # one round: each ratio is that round's own
        fps, pure, to_pure, limit, to_limit = map(float, r[2:7])
        assert abs(fps / pure - to_pure) < 0.02 and abs(fps / limit - to_limit) < 0.02, out
    for kind in ("classifier", "detector"):  # the verdict names the rows under 0.9
        short = [r[1] for r in rows if r[0] == kind and float(r[6]) < 0.9]
        verdict = f"NOT met at N = {', '.join(short)}" if short else "met"
        assert f"  {kind}: target e2e >= 0.9 of the limit at every N (issue 19, on a CPU): {verdict}\n" in out, out
