"""``edgecv import MODEL``: a model edgecv did not train (an Ultralytics YOLO, a timm or Keras classifier, a face
embedder from a model zoo) made into an edgecv artifact: the same file with full edgecv metadata (validated against
what the model really outputs), and, given ``--data``, the same calibration, int8 conversion, fidelity report and
accuracy gate that ``edgecv export`` gives a trained run. No torch: the float reference is the imported ONNX itself,
run through the device's own backend.

``--data`` is cut in two by a seeded random split recorded in ``import_report.json`` (by identity for embedders): a
calibration part (int8 calibration, an embedder's thresholds, the drift reference) and a test part (every fidelity
row). The int8 gate keeps the model's decoder tail (every node between the last Conv/Gemm/MatMul and an output: a
YOLO's box decoding and class scores, which share one tensor whose range int8 cannot serve) in float, and on a
failed attempt keeps the nodes whose own activations int8 serves worst (the signal-to-quantization-noise ratio of
each tensor before and after its QDQ pair, measured by onnxruntime's ``qdq_loss_debug`` on calibration images).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import edgecv
from edgecv._deps import require
from edgecv.artifact import ArtifactMeta, read_meta
from edgecv.artifact.contract import to_plain
from edgecv.errors import EdgecvError
from edgecv.export._atomic import publish_together
from edgecv.export._embed import publish
from edgecv.export.fidelity import agreement_all, drop_bound, measure, run_backend, with_row_thresholds
from edgecv.export.gate import GateResult, recover
from edgecv.export.import_parts import ImportData, activation_ranking, decoder_tail, drift_reference
from edgecv.export.import_probe import Probe, model_names, probe_onnx, probe_tflite
from edgecv.runtime.backends import create_backend
from edgecv.runtime.postprocess import get_postprocess
from edgecv.runtime.preprocess import prepare_frame
from edgecv.tasks import get_task

log = logging.getLogger(__name__)

PRESETS: dict[str, dict[str, Any]] = {  # how the model's makers preprocess (x/255 - mean) / std
    "imagenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "color": "RGB", "resize": "stretch"},
    "yolo": {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "color": "RGB", "resize": "letterbox"},  # pixels / 255
    "arcface": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "color": "RGB", "resize": "stretch"},  # (x-127.5)/127.5
    "raw": {"mean": (0.0, 0.0, 0.0), "std": (1 / 255, 1 / 255, 1 / 255), "color": "RGB", "resize": "stretch"},  # 0..255
}


@dataclass(frozen=True)
class ImportSpec:
    task: str
    out: str | Path
    labels: str | Path | None = None  # a text file, one class name a line
    layout: str | None = None  # detectors: yolo | yolo-e2e (default: from the model's metadata or output shape)
    input_size: tuple[int, int] | None = None  # (height, width), for models whose input size is dynamic
    preset: str | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    color: str | None = None
    resize: str | None = None
    data: str | Path | None = None
    annotations: str | None = None  # detectors: a COCO JSON (default: DATA/annotations.json or a YOLO layout)
    int8: bool = False
    max_drop: float = 1.0
    calib_images: int = 256
    calib_method: str = "minmax"
    target_far: float = 1e-3
    test_fraction: float = 0.5
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        task = get_task(self.task)
        if self.layout is not None and self.layout not in task.import_layouts:
            raise EdgecvError(
                f"--layout {self.layout!r}: a {task.name} model's layout is one of "
                f"{', '.join(task.import_layouts) or '(none to choose)'}"
            )
        if self.preset is not None and self.preset not in PRESETS:
            raise EdgecvError(f"--preset {self.preset!r}: one of {', '.join(PRESETS)}")
        if self.int8 and self.data is None:
            raise EdgecvError("--int8 needs --data: int8 is calibrated on, and gated by, images of your own")
        if task.import_needs_data and self.data is None:
            raise EdgecvError(task.import_needs_data)
        if not 0 < self.test_fraction < 1:
            raise EdgecvError(f"test fraction {self.test_fraction}: must be between 0 and 1")


@dataclass
class ImportResult:
    out_dir: Path
    meta: ArtifactMeta
    files: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    report: Path | None = None


def _labels(spec: ImportSpec, probe: Probe, path: Path) -> list[str]:
    if spec.labels is not None:
        p = Path(spec.labels)
        if not p.is_file():
            raise EdgecvError(f"--labels {p}: no such file")
        labels = [line.strip() for line in p.read_text().splitlines() if line.strip()]
        if len(set(labels)) != len(labels):
            raise EdgecvError(f"--labels {p}: names repeat")
        return labels
    names = model_names(probe.extra)
    if names is None and get_task(spec.task).import_needs_labels:
        raise EdgecvError(
            f"{path}: has no class names in its metadata; pass --labels FILE (one name a line, in "
            "the order of the model's outputs)"
        )
    return names or []


def _input_size(spec: ImportSpec, probe: Probe, path: Path) -> tuple[int, int]:
    if spec.input_size is not None:
        if None not in probe.size and tuple(spec.input_size) != probe.size:
            raise EdgecvError(
                f"--input-size {spec.input_size[0]}x{spec.input_size[1]}: the model's input is fixed at "
                f"{probe.size[0]}x{probe.size[1]}"
            )
        return tuple(spec.input_size)
    if None not in probe.size:
        return probe.size
    imgsz = probe.extra.get("imgsz")
    if imgsz:
        try:
            size = ast.literal_eval(imgsz)
            return (int(size[0]), int(size[1])) if isinstance(size, (list, tuple)) else (int(size), int(size))
        except (ValueError, SyntaxError, TypeError, IndexError):
            pass
    raise EdgecvError(f"{path}: its input height/width are dynamic; pass --input-size HxW (the size it was trained at)")


# -- the import -------------------------------------------------------------------------------------------------------


def _meta(spec: ImportSpec, path: Path, probe: Probe, stage: Path) -> ArtifactMeta:
    """The artifact metadata, validated by running the model once through the device's backend."""
    task = get_task(spec.task)
    labels = _labels(spec, probe, path)
    preset = PRESETS[spec.preset or task.import_preset]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = ArtifactMeta(
        task=spec.task,
        labels=labels,
        input_size=_input_size(spec, probe, path),
        mean=tuple(spec.mean or preset["mean"]),
        std=tuple(spec.std or preset["std"]),
        layout=probe.layout,
        color=spec.color or preset["color"],
        resize=spec.resize or preset["resize"],
        precision=probe.precision,
        input_quant=probe.input_quant,
        decoder=task.probe_decoder(),
        thresholds=task.import_thresholds(spec),
        source={
            "imported": path.name,
            "sha256": digest[:16],
            "format": probe.fmt,
            "producer": probe.producer,
            "preset": spec.preset or task.import_preset,
            "run": f"import:{path.stem}",
            "edgecv_version": edgecv.__version__,
        },
    )
    probe_file = stage / f"probe{path.suffix}"
    publish(path, probe_file, meta)
    with create_backend(probe_file, threads=1) as backend:
        x, _ = prepare_frame(np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8), meta, "RGB")
        try:
            outputs = backend.infer(x[None])
        except Exception as exc:  # noqa: BLE001  (a backend's own error on a wrong input, e.g. a size mismatch)
            raise EdgecvError(
                f"{path}: does not run on a {meta.input_size[0]}x{meta.input_size[1]} {meta.layout} "
                f"input ({str(exc).splitlines()[0][:200]})"
            ) from None
    probe_file.unlink()
    return dataclasses.replace(meta, decoder=task.import_decoder(outputs, labels, path, spec.layout, probe.extra, digest[:16]))


def _named_nodes(path: Path, stage: Path) -> Path:
    """The model with a name on every node (the int8 gate keeps nodes float by name; exporters may leave some out)."""
    onnx = require("onnx", "import", "edgecv import")
    proto = onnx.load(str(path))
    taken = {n.name for n in proto.graph.node}
    for i, node in enumerate(proto.graph.node):
        if not node.name:
            node.name = next(f"{node.op_type}_{k}" for k in range(i, i + len(taken) + 2) if f"{node.op_type}_{k}" not in taken)
            taken.add(node.name)
    out = stage / f"named{path.suffix}"
    onnx.save(proto, str(out))
    return out


def import_model(model: str | Path, spec: ImportSpec) -> ImportResult:
    """Import ``model`` (.onnx or .tflite) as ``spec`` says into ``spec.out``: every artifact and
    ``import_report.json`` are published together (a failed or interrupted import leaves the folder as it was)."""
    path = Path(model)
    if not path.is_file():
        raise EdgecvError(f"{path}: no such file")
    if path.suffix not in (".onnx", ".tflite"):
        raise EdgecvError(f"{path}: edgecv imports .onnx and .tflite models")
    if spec.int8 and path.suffix == ".tflite":
        raise EdgecvError(
            f"{path}: a .tflite cannot be re-quantized (LiteRT converts from the float graph, which only "
            "the framework that made it has); import its ONNX with --int8, or convert int8 there"
        )
    probe = probe_onnx(path) if path.suffix == ".onnx" else probe_tflite(path)
    if spec.int8 and probe.precision == "int8":
        raise EdgecvError(f"{path}: is quantized already; --int8 quantizes float models")
    out_dir = Path(spec.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging.") as tmp:
        stage, ready = Path(tmp), Path(tmp) / "ready"
        ready.mkdir()
        meta = _meta(spec, path, probe, stage)
        result = ImportResult(out_dir, meta)
        name = f"model_{meta.precision}{path.suffix}"
        source = stage / name
        publish(_named_nodes(path, stage) if probe.fmt == "onnx" else path, source, meta)
        report: dict[str, Any] = {
            "model": str(path.resolve()),
            "sha256": meta.source["sha256"],
            "task": spec.task,
            "decoder": to_plain(meta.decoder),
            "artifacts": result.rows,
            "failures": result.failures,
        }
        if spec.data is not None:
            meta = _measure(spec, source, meta, report, result, ready)
        else:
            source.replace(ready / name)  # its metadata is in it already
        result.files = sorted(p.name for p in ready.iterdir())
        (ready / "import_report.json").write_text(json.dumps(report, indent=1, default=float))
        publish_together(ready, out_dir)
    result.report, result.meta = out_dir / "import_report.json", meta
    return result


def _measure(
    spec: ImportSpec, source: Path, meta: ArtifactMeta, report: dict[str, Any], result: ImportResult, ready: Path
) -> ArtifactMeta:
    """The imported model measured on the test part of ``--data`` (the reference for every other row), its
    thresholds and drift reference from the calibration part, and its gated int8 when asked."""
    name = source.name
    data = get_task(spec.task).import_data(spec, meta)
    log.info(
        "data: %d test and %d calibration images (split seed %d)",
        len(data.eval_set.images),
        len(data.split["calibration"]),
        spec.seed,
    )
    run = run_backend(source, data.eval_set.images, spec.threads)  # the imported model: the reference
    reference = run[0]
    row = measure(source, data.eval_set, reference, get_task(spec.task).fidelity_metric(), spec.threads, data.val_set, run=run)
    meta = with_row_thresholds(meta, row)
    if get_postprocess(spec.task).confidence is not None:
        meta = dataclasses.replace(meta, drift=drift_reference(source, meta, data.split["root"], data.calibration.files))
    report.update(
        split=data.split,
        reference={"backend": row["backend"], "precision": meta.precision, "file": name, "n": row["n"]},
        calibration={
            "images": len(data.calibration),
            "hash": data.calibration.hash,
            "method": spec.calib_method,
            "skipped": data.calibration.skipped,
        },
    )
    result.rows.append({**row, "file": name, "published": True})
    publish(source, ready / name, dataclasses.replace(meta, fidelity=_fidelity(row)))
    if spec.int8:
        _int8(spec, source, meta, data, reference, result, ready)
    return meta


def _fidelity(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("file", "providers", "published")}


def _int8(
    spec: ImportSpec, fp32: Path, meta: ArtifactMeta, data: ImportData, reference: list, result: ImportResult, ready: Path
) -> None:
    """The gated int8 ONNX of ``fp32`` (the decoder tail always float; more nodes on a failed attempt)."""
    from edgecv.export.onnx_int8 import onnx_int8
    from edgecv.export.spec import ConvertSpec

    onnx = require("onnx", "import", "edgecv import")
    tail = tuple(decoder_tail(onnx.load(str(fp32), load_external_data=False)))
    final = "model_int8.onnx"
    first: list[Path] = []
    metric = get_task(spec.task).fidelity_metric()

    def build(keep: tuple[str, ...]) -> Path:
        out = fp32.with_name(f"model_int8-float{len(keep)}.onnx" if keep else final)
        path = onnx_int8(
            fp32,
            ConvertSpec(
                out=out,
                meta=meta,
                precision="int8",
                calibration=data.calibration,
                calib_method=spec.calib_method,
                keep_float=tail + keep,
            ),
        )
        first.append(path)
        return path

    def evaluate(path: Path) -> dict[str, Any]:
        return {**measure(path, data.eval_set, reference, metric, spec.threads, data.val_set), "file": final}

    def ranking() -> list[tuple[str, float]]:
        log.info("%s: ranking nodes by their activations' int8 error on %d calibration images", final, 8)
        return [(n, s) for n, s in activation_ranking(fp32, first[0], data.calibration, meta) if n not in tail]

    res = recover(build, evaluate, ranking, spec.max_drop, name=final)
    result.rows.append(_int8_row(spec, res, fp32, data, len(tail), result, ready))


def _int8_row(
    spec: ImportSpec, res: GateResult, fp32: Path, data: ImportData, tail: int, result: ImportResult, ready: Path
) -> dict[str, Any]:
    """The gate's answer as a fidelity row; a passing int8 is published (with its agreement over every image)."""
    final = "model_int8.onnx"
    row = {
        **res.row,
        "file": final,
        "gate": {
            "max_drop": spec.max_drop,
            "passed": res.path is not None,
            "float_layers": list(res.keep_float),
            "attempts": res.attempts,
            "decoder_float_nodes": tail,
        },
    }
    if res.path is None:
        result.failures.append(
            f"{final}: {row['metric']} drops {row['drop_points']:.2f} points (95% bound "
            f"{drop_bound(row):.2f} > {spec.max_drop}) even with "
            f"{len(res.attempts[-1]['float_layers'])} node(s) kept in float; not written"
        )
        row["published"] = False
        return row
    images = np.concatenate([data.eval_set.images, data.calibration.images])
    ref_all = run_backend(fp32, images, spec.threads)[0]
    row["agreement_all"] = {
        "value": agreement_all(res.path, images, ref_all, get_task(spec.task).fidelity_metric(), spec.threads),
        "n": len(images),
        "images": "test+calibration",
        "labels_used": False,
    }
    int8_meta = with_row_thresholds(read_meta(res.path), row)
    publish(res.path, ready / final, dataclasses.replace(int8_meta, fidelity=_fidelity(row)))
    row["published"] = True
    return row
