"""Fidelity: every artifact is run on the run's test split through the SAME backend code the device uses
(``edgecv.runtime.backends``, no torch) and compared with torch fp32 on the same preprocessed pixels."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecv._quiet import progress
from edgecv.export.calibration import read_images
from edgecv.export.stats import Scorer, paired_drop_interval
from edgecv.runtime.backends import Backend, create_backend
from edgecv.runtime.preprocess import letterbox_transform, prepare_input


@dataclass(frozen=True)
class EvalSet:
    """Test images at the model's input size (uint8 RGB, resized or letterboxed as the device does), their labels
    (classify) or ground-truth boxes in those pixels as a COCO dict (detect)."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    files: tuple[str, ...]
    skipped: int = 0
    targets: dict[str, Any] | None = None


def load_eval_set(
    name: str, root: str | Path, files: Sequence[str], labels: Sequence[int], input_size: tuple[int, int], resize: str = "stretch"
) -> EvalSet:
    images, kept, skipped = read_images(root, files, input_size, f"{name} images", resize)
    return EvalSet(name, images, np.asarray(labels)[kept], tuple(files[i] for i in kept), skipped)


def load_detect_eval_set(
    name: str, run_dir: str | Path, root: str | Path, files: Sequence[str], labels: Sequence[int], input_size: tuple[int, int]
) -> EvalSet:
    """Letterboxed images of ``files`` of a run's detection set (see ``detect_eval_set``)."""
    from edgecv.data.detection import load_detection
    from edgecv.recipes import load_recipe

    rec = load_recipe(Path(run_dir) / "recipe.yaml")
    return detect_eval_set(name, load_detection(root, rec.data.annotations, only=files), files, labels, input_size)


def detect_eval_set(name: str, ds, files: Sequence[str], labels: Sequence[int], input_size: tuple[int, int]) -> EvalSet:
    """Letterboxed images of ``files`` of the DetectionSet ``ds`` with their boxes moved into the letterboxed pixels
    (IoU, and so mAP, is unchanged by the letterbox's uniform scale)."""
    from edgecv.data.detection import to_coco

    images, kept, skipped = read_images(ds.root, files, input_size, f"{name} images", resize="letterbox")
    kept_files = [files[i] for i in kept]
    gt = to_coco(ds, kept_files)
    index = ds.by_file()
    for ann in gt["annotations"]:
        s = index[kept_files[ann["image_id"] - 1]]
        x, y, w, h = ann["bbox"]
        x1, y1, x2, y2 = letterbox_transform((s.height, s.width), input_size).to_input(np.float32([[x, y, x + w, y + h]]))[0]
        ann["bbox"], ann["area"] = [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], float((x2 - x1) * (y2 - y1))
    for im in gt["images"]:
        im["height"], im["width"] = input_size
    return EvalSet(name, images, np.asarray(labels)[kept], tuple(kept_files), skipped, targets=gt)


def top1(outputs: list[np.ndarray], es: EvalSet) -> float:
    return float(np.mean(outputs[0].argmax(1) == es.labels)) if len(es.labels) else float("nan")


def map50(outputs: list[np.ndarray], es: EvalSet) -> float:
    """COCO mAP@0.5 of the raw (boxes, scores) outputs, decoded by the runtime's postprocessing (the device's NMS)."""
    from edgecv.evaluate.detect import score_outputs

    return score_outputs(outputs, es.targets, [c["name"] for c in es.targets["categories"]])[0]["map50"]


def tar_at_far(outputs: list[np.ndarray], es: EvalSet, far: float = 1e-2) -> float:
    """Face verification TAR at FAR=1e-2 over every pair of test images (identities never trained on), the
    threshold set on this artifact's own impostor pairs."""
    from edgecv.evaluate.embed import pair_scores
    from edgecv.evaluate.embed import tar_at_far as tar

    return tar(*pair_scores(outputs[0], es.labels), far)[0]


def argmax_agreement(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.mean(out.argmax(-1) == ref.argmax(-1)))


def neighbour_agreement(out: np.ndarray, ref: np.ndarray) -> float:
    """Embeddings: how often each image's nearest other image is the same under both."""

    def nearest(e: np.ndarray) -> np.ndarray:
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        s = e @ e.T
        np.fill_diagonal(s, -np.inf)
        return s.argmax(1)

    return float(np.mean(nearest(out) == nearest(ref))) if len(out) > 1 else float("nan")


def own_threshold(
    outputs: list[np.ndarray], es: EvalSet, path: str | Path, backend: Backend, val_set: EvalSet | None
) -> dict[str, Any]:
    """Embedders: this artifact's own match threshold, calibrated on the val pairs (through the artifact, since int8
    shifts similarities and so the FAR a float threshold gives), and the TAR/FAR it gives on the test pairs."""
    from edgecv.evaluate.embed import at_threshold, calibrate_threshold

    stored = backend.meta.thresholds
    if val_set is not None and len(val_set.images) > 1:
        val_outs = run_backend(path, val_set.images, backend=backend)[0]
        cal = calibrate_threshold(val_outs[0], val_set.labels, stored.target_far)
    else:  # too few val people to calibrate through this artifact: the thresholds it carries
        cal = {
            "match": stored.required("match", str(path), "give --data enough people to calibrate on"),
            "verify": stored.verify,
            "track_gate": stored.track_gate,
            "target_far": stored.target_far,
            "tar": stored.val_tar,
            "far": stored.val_far,
        }
    return {"threshold": cal, "at_threshold": at_threshold(outputs[0], es.labels, cal["match"])}


@dataclass(frozen=True)
class TaskMetric:
    """What a task's fidelity rows report and the int8 gate compares; each ``Task`` gives its own
    (``Task.fidelity_metric``, in ``edgecv/tasks/``)."""

    name: str
    fn: Callable[[list[np.ndarray], EvalSet], float]  # outputs, eval set -> metric in [0, 1]
    scorer: Callable[[list, Any], Scorer]  # outputs, eval set -> the metric on a bootstrap draw of images (stats.py)
    draws: int  # bootstrap draws of the drop's interval
    compared: int = 0  # the output compared for max |diff| and agreement
    agreement: Callable[[np.ndarray, np.ndarray], float] = argmax_agreement
    extra: Callable[..., dict[str, Any]] | None = None  # (outputs, eval set, path, backend, val set) -> more fields


def run_backend(
    path: str | Path, images: np.ndarray, threads: int | None = None, backend: Backend | None = None
) -> tuple[list[Any], list[float], Any]:
    """Every output tensor at batch 1, stacked over the images (or, for an output whose rows vary per image, such
    as in-graph NMS's ``selected``, a list with one array per image), and per-image latency in ms (``backend``:
    one already loaded from ``path``). Outputs are in the task's canonical form (an imported model's layout decoded
    as on the device), so artifacts of any origin compare with each other and with torch."""
    from edgecv.runtime.postprocess import get_postprocess

    backend = backend or create_backend(path, threads=threads)
    canonical = get_postprocess(backend.meta.task).to_canonical
    xs = [prepare_input(im, backend.meta)[None] for im in images]
    backend.infer(xs[0])  # warm-up: first call allocates and plans
    outs, ms = [], []
    for x in progress(xs, desc=f"fidelity {Path(path).name}", disable=None, leave=False):
        t = time.perf_counter()
        y = backend.infer(x)
        outs.append(canonical(y, backend.meta))
        ms.append((time.perf_counter() - t) * 1e3)
    per_image = [[o[k] for o in outs] for k in range(len(outs[0]))]
    stacked = [np.concatenate(v) if all(a.shape == v[0].shape and a.shape[:1] == (1,) for a in v) else v for v in per_image]
    return stacked, ms, backend


def with_row_thresholds(meta, row: dict[str, Any]):
    """``meta`` with an embedder artifact's own thresholds from its fidelity row (calibrated through it: int8
    shifts similarities), or ``meta`` itself for a row without them."""
    import dataclasses

    from edgecv.artifact import EmbedThresholds

    if "threshold" not in row:
        return meta
    return dataclasses.replace(meta, thresholds=EmbedThresholds.calibrated(row["threshold"]))


def drop_bound(row: dict[str, Any]) -> float:
    """What the gate compares with --max-drop: the upper bound of the drop's 95% interval, or the point estimate
    where the test split is too small to give an interval."""
    high = (row.get("drop_ci95") or {}).get("high")
    return row["drop_points"] if high is None else max(high, row["drop_points"])


def agreement_all(
    path: str | Path, images: np.ndarray, reference: list[np.ndarray], tm: TaskMetric, threads: int | None = None
) -> float:
    """Label-free: how often the artifact's prediction is fp32's on ``images`` (every image of the run)."""
    outs = run_backend(path, images, threads)[0]
    return tm.agreement(outs[tm.compared], reference[tm.compared])


def measure(
    path: str | Path,
    eval_set: EvalSet,
    reference: list[np.ndarray],
    tm: TaskMetric,
    threads: int | None = None,
    val_set: EvalSet | None = None,
    run: tuple | None = None,
) -> dict[str, Any]:
    """One row of the export report for the artifact at ``path`` (``reference``: torch fp32's outputs; ``tm``: the
    task's metric; ``val_set``: what an embedder's threshold is calibrated on; ``run``: ``run_backend``'s answer for it
    on ``eval_set``, when the caller has it already)."""
    outs, ms, backend = run or run_backend(path, eval_set.images, threads)
    ref_metric, value = tm.fn(reference, eval_set), tm.fn(outs, eval_set)
    out, ref = outs[tm.compared], reference[tm.compared]
    extra = tm.extra(outs, eval_set, path, backend, val_set) if tm.extra else {}
    return {
        "file": Path(path).name,
        "format": Path(path).suffix.lstrip("."),
        "precision": backend.meta.precision,
        "backend": backend.name,
        "providers": backend.providers,
        "split": eval_set.name,
        "n": len(eval_set.images),
        "metric": tm.name,
        "value": value,
        "reference": ref_metric,
        "drop_points": round((ref_metric - value) * 100, 4),
        "drop_ci95": paired_drop_interval(tm.scorer, outs, reference, eval_set, tm.draws),
        "top1_agreement": tm.agreement(out, ref),
        "max_abs_diff": float(np.abs(out - ref).max()),
        "size_mb": Path(path).stat().st_size / 1e6,
        "latency_p50_ms": float(np.percentile(ms, 50)),
        "threads": threads,
        **extra,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'artifact':<20} {'backend':<11} {'metric':>8} {'drop pts [95% CI]':>20} {'agree':>6} {'all':>6} "
        f"{'max|d|':>8} {'MB':>6} {'p50 ms':>7}  gate"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        gate = r.get("gate")
        note = "-" if gate is None else ("pass" if gate["passed"] else "FAIL")
        if gate and gate["float_layers"]:
            layers = gate["float_layers"]
            note += f" ({len(layers)} float: {', '.join(layers[:3])}{'...' if len(layers) > 3 else ''})"
        ci = r.get("drop_ci95") or {}
        drop = f"{r['drop_points']:.2f}" + (f" [{ci['low']:+.2f},{ci['high']:+.2f}]" if ci.get("high") is not None else "")
        agree_all = (r.get("agreement_all") or {}).get("value")
        lines.append(
            f"{r['file']:<20} {r['backend']:<11} {r['value']:>8.4f} {drop:>20} {r['top1_agreement']:>6.3f} "
            f"{'-' if agree_all is None else f'{agree_all:.3f}':>6} {r['max_abs_diff']:>8.4f} "
            f"{r['size_mb']:>6.2f} {r['latency_p50_ms']:>7.2f}  {note}"
        )
    return "\n".join(lines)


def fastest_per_format(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per format with more than one published artifact, the one to run on a machine like this one: the lowest
    p50 latency among those published (not refused by the gate), and how long each other one takes relative to it. int8 does not
    pay on every CPU (onnxruntime's exact int8 kernels on x86 without VNNI are slower than fp32): the report says
    so instead of leaving the int8 file to look like the fast one."""
    out: dict[str, dict[str, Any]] = {}
    for fmt in sorted({r["format"] for r in rows}):
        published = [r for r in rows if r["format"] == fmt and not r.get("nms_in_graph") and r.get("published", True)]
        if len(published) < 2:
            continue
        best = min(published, key=lambda r: r["latency_p50_ms"])
        out[fmt] = {
            "file": best["file"],
            "precision": best["precision"],
            "latency_p50_ms": best["latency_p50_ms"],
            "threads": best["threads"],
            "relative_time": {
                r["file"]: round(r["latency_p50_ms"] / best["latency_p50_ms"], 3) for r in published if r is not best
            },
        }
    return out


def format_fastest(fastest: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for fmt, f in fastest.items():
        others = ", ".join(f"{name} takes {t:.2f}x as long" for name, t in f["relative_time"].items())
        threads = f"{f['threads']} thread(s)" if f["threads"] else "the backend's default threads"
        lines.append(f"fastest {fmt} here: {f['file']} ({f['latency_p50_ms']:.2f} ms p50, {threads}); {others}")
    return lines
