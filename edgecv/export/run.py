"""``edgecv export RUN``: build every requested artifact from a run's best checkpoint, measure each one
through the device's own backends on the run's test split, gate int8 on its accuracy drop (repairing it
with mixed precision when it can), embed the report in each artifact and write ``export_report.json``.

Artifacts are built in a staging folder and published (temp file + rename) only after they pass: a failed
or interrupted export leaves every previous artifact intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import edgecv
from edgecv.artifact import ArtifactMeta, read_meta
from edgecv.data.splits import Split
from edgecv.errors import EdgecvError
from edgecv.export import _converters  # noqa: F401  (registers every converter)
from edgecv.export._atomic import publish_together
from edgecv.export._embed import publish
from edgecv.export._registry import get_converter
from edgecv.export.calibration import Calibration, load_calibration, raw_frames
from edgecv.export.fidelity import EvalSet, agreement_all, drop_bound, fastest_per_format, measure, with_row_thresholds
from edgecv.export.gate import layer_sensitivity, recover
from edgecv.export.spec import FORMATS, ConvertSpec, ExportSpec
from edgecv.models.run_meta import RunMeta
from edgecv.runtime.drift import build_reference, frame_stats
from edgecv.runtime.postprocess import get_postprocess
from edgecv.runtime.preprocess import prepare_frame, prepare_input
from edgecv.tasks import get_task, task_of_run

log = logging.getLogger(__name__)
ALL_IMAGES_MAX = 5000  # label-free agreement: at most this many of the run's images (a seeded sample)


@dataclass
class ExportResult:
    out_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    report: Path | None = None
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase, in order


class _Phases:
    """``with phases("name"):`` logs the phase as it starts and its seconds as it ends, into ``times``."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str, what: str):
        log.info("%s: %s", name, what)
        t = time.perf_counter()
        yield
        self.times[name] = round(time.perf_counter() - t, 2)
        log.info("%s: done in %.1f s", name, self.times[name])


def load_run_model(run_dir: Path) -> tuple[torch.nn.Module, RunMeta, ArtifactMeta]:
    """The run's best model in eval mode, its checkpoint meta, and the artifact metadata it exports with."""
    recipe_hash = hashlib.sha256((run_dir / "recipe.yaml").read_bytes()).hexdigest()[:16]
    model, ck, meta = task_of_run(run_dir).load(run_dir)
    source = {
        "run": run_dir.name,
        "backbone": ck.backbone,
        "weights": ck.weights_source,
        "recipe": ck.recipe_name,
        "recipe_hash": recipe_hash,
        "edgecv_version": edgecv.__version__,
    }
    return model, ck, dataclasses.replace(meta, source=source)


@torch.no_grad()
def torch_reference(model: torch.nn.Module, meta: ArtifactMeta, images: np.ndarray, batch: int = 32) -> list[np.ndarray]:
    """torch fp32 outputs (every output tensor) on the same pixels the artifacts get (``prepare_input``)."""
    outs = []
    for i in range(0, len(images), batch):
        x = np.stack([prepare_input(im, meta) for im in images[i : i + batch]])
        y = model(torch.from_numpy(x))
        outs.append([t.numpy() for t in (y if isinstance(y, tuple) else (y,))])
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def drift_reference(
    model: torch.nn.Module, meta: ArtifactMeta, frames_bgr: list[np.ndarray], confidence_filter: float = 0.25
) -> dict[str, Any]:
    """What the runtime's drift monitor compares live frames with, computed as the device computes it: its own
    ``frame_stats`` on raw BGR frames (training images as OpenCV reads them, not the letterboxed model inputs), and
    the model's confidence through the device's ``prepare_frame`` and the task's own confidence function (a
    detector's: its best box score after the ``confidence_filter`` the device's drift monitor applies too)."""
    confidence = get_postprocess(meta.task).confidence
    rows = []
    with torch.no_grad():
        for bgr in frames_bgr:
            x, _ = prepare_frame(bgr, dataclasses.replace(meta, input_quant=None), "BGR")
            y = model(torch.from_numpy(x[None]))
            outputs = [t.numpy() for t in (y if isinstance(y, tuple) else (y,))]
            rows.append({**frame_stats(bgr, "BGR"), "confidence": confidence(outputs, confidence_filter)})
    return build_reference(rows, confidence_filter)


class _Exporter:
    def __init__(
        self,
        model,
        meta: ArtifactMeta,
        spec: ExportSpec,
        stage: Path,
        eval_set: EvalSet,
        reference: list[np.ndarray],
        calibration: Calibration | None,
        val_set: EvalSet | None = None,
        run_dir: Path | None = None,
        split: Split | None = None,
    ):
        self.model, self.meta, self.spec, self.stage, self.val_set = model, meta, spec, stage, val_set
        self.eval_set, self.reference, self.calibration = eval_set, reference, calibration
        self._staged: dict[tuple[str, str], tuple[Path, dict[str, Any]]] = {}
        self._ranking: list[tuple[str, float]] | None = None
        self._all: tuple[np.ndarray, list[np.ndarray], str] | None = None
        self.run_dir, self.split = run_dir, split
        self.metric = get_task(meta.task).fidelity_metric()

    def ranking(self) -> list[tuple[str, float]]:
        if self._ranking is None:
            log.info("measuring per-layer int8 sensitivity on %d calibration images", min(32, len(self.calibration)))
            self._ranking = layer_sensitivity(self.model, self.calibration, self.meta)
        return self._ranking

    def _convert(self, fmt: str, precision: str, keep: tuple[str, ...]) -> Path:
        conv = get_converter(FORMATS[fmt].converters[precision])
        tag = f"-float{len(keep)}" if keep else ""
        out = self.stage / f"model_{precision}{tag}{FORMATS[fmt].suffix}"
        always = tuple(self.model.float_modules)  # the model's own (a detector's box decoder)
        spec = ConvertSpec(
            out=out,
            meta=self.meta,
            precision=precision,
            calib_method=self.spec.calib_method,
            calibration=self.calibration if precision == "int8" else None,
            keep_float=always + keep,
            activations=self.spec.int8_activations if fmt == "onnx" else "int8",
        )
        if conv.source == "torch":
            return conv.fn(self.model, spec)
        source = self.build("onnx", "fp32")[0]  # ONNX-sourced converters start from the fp32 ONNX
        if fmt == "engine" and precision == "int8":  # TensorRT builds int8 from signed, symmetric Q/DQ pairs
            if self.spec.int8_activations == "int8":  # the gated ONNX itself: the engine inherits its float layers
                return conv.fn(self._staged[("onnx", "int8")][0], spec)
            qdq = self.stage / "engine-source" / f"model_int8{tag}.onnx"  # the same float layers (keep); not published
            source = get_converter("onnx_int8").fn(source, dataclasses.replace(spec, out=qdq))
        return conv.fn(source, spec)

    def agreement_all(self, path: Path) -> dict[str, Any]:
        """Label-free agreement with fp32 on every image of the run (train + val + test; a seeded sample of
        ``ALL_IMAGES_MAX`` when there are more), many times the test split."""
        if self._all is None:
            names = [n for n in ("train", "val", "test") if self.split.files.get(n)]
            task = get_task(self.meta.task)
            sets = [
                self.eval_set if n == "test" else task.eval_set(self.run_dir, self.split, n, self.meta.input_size) for n in names
            ]
            images = np.concatenate([s.images for s in sets])
            if len(images) > ALL_IMAGES_MAX:
                images = images[np.sort(np.random.default_rng(0).choice(len(images), ALL_IMAGES_MAX, replace=False))]
            reference = torch_reference(self.model, self.meta, images)
            self._all = (images, reference, "+".join(names))
        images, reference, names = self._all
        value = agreement_all(path, images, reference, self.metric, self.spec.threads)
        return {"value": value, "n": len(images), "images": names, "labels_used": False}

    def _evaluate(self, path: Path) -> dict[str, Any]:
        return measure(path, self.eval_set, self.reference, self.metric, self.spec.threads, self.val_set)

    def build(self, fmt: str, precision: str, keep: tuple[str, ...] = ()) -> tuple[Path | None, dict[str, Any]]:
        """Staged artifact + its report row; int8 goes through the gate (mixed precision when needed)."""
        if (fmt, precision) in self._staged and not keep:
            return self._staged[(fmt, precision)]
        if precision == "int8" and not keep:
            if fmt == "engine":  # built from the gated int8 ONNX: inherits its float layers
                onnx_path, onnx_row = self.build("onnx", "int8")
                if onnx_path is None:
                    return None, onnx_row
                keep = tuple(onnx_row.get("gate", {}).get("float_layers", ()))
            else:
                res = recover(
                    lambda k: self._convert(fmt, precision, k),
                    self._evaluate,
                    self.ranking,
                    self.spec.max_drop,
                    name=f"model_{precision}{FORMATS[fmt].suffix}",
                )
                row = {
                    **res.row,
                    "gate": {
                        "max_drop": self.spec.max_drop,
                        "passed": res.path is not None,
                        "float_layers": list(res.keep_float),
                        "attempts": res.attempts,
                    },
                }
                self._staged[(fmt, precision)] = (res.path, row)
                return res.path, row
        path = self._convert(fmt, precision, keep)
        row = self._evaluate(path)
        if precision != "fp32":
            row["gate"] = {
                "max_drop": self.spec.max_drop,
                "passed": drop_bound(row) <= self.spec.max_drop,
                "float_layers": list(keep),
                "attempts": [],
            }
        result = (path if precision == "fp32" or row["gate"]["passed"] else None, row)
        if not keep:
            self._staged[(fmt, precision)] = result
        return result


def _open_run(run_dir: Path, spec: ExportSpec, data: str | Path | None):
    """The run's model, metadata, task and split, or an error naming what is missing."""
    for name in ("best.pt", "split.json", "recipe.yaml"):
        if not (run_dir / name).is_file():
            raise EdgecvError(f"{run_dir}: no {name}; is this a finished `edgecv train` run directory?")
    model, _, meta = load_run_model(run_dir)
    task = get_task(meta.task)
    if spec.nms_in_graph and not task.graph_nms:
        raise EdgecvError(f"--nms-in-graph is for detector runs ({run_dir} is a {task.name} run)")
    split = Split.load(run_dir / "split.json", data)
    if not split.files.get("test"):
        raise EdgecvError(f"{run_dir}/split.json: the test split is empty; fidelity needs test images")
    return model, meta, task, split


def _calibrate(model, meta: ArtifactMeta, task, split: Split, spec: ExportSpec):
    """A stratified sample of the train split: the int8 calibration (None without --int8) and the drift monitor's
    reference statistics, which join the metadata."""
    sample = load_calibration(
        split.root,
        split.files["train"],
        split.labels["train"],
        spec.calib_images,
        meta.input_size,
        spec.seed,
        resize=meta.resize,
    )
    calibration = sample if spec.int8 else None
    if calibration is not None:
        log.info(
            "calibration: %d train images (stratified, seed %d), hash %s, %d unreadable skipped",
            len(calibration),
            spec.seed,
            calibration.hash,
            calibration.skipped,
        )
    drift = drift_reference(model, meta, raw_frames(split.root, sample.files)) if task.frame_drift else None
    return dataclasses.replace(meta, drift=drift), calibration


def _build_target(
    exporter: _Exporter, fmt: str, precision: str, final: Path, ready: Path, phases: _Phases, result: ExportResult
) -> None:
    """One artifact: converted and measured; staged in ``ready`` if it passed its gate, else a failure line."""
    gated = ", gated" if precision != "fp32" else ""
    with phases(final.name, f"converting ({fmt} {precision}{gated}) and measuring on the test split"):
        staged, row = exporter.build(fmt, precision)
    row = {**row, "file": final.name}
    if staged is None:
        tried = row.get("gate", {}).get("attempts") or [{"float_layers": []}]
        result.failures.append(
            f"{final.name}: {row['metric']} drops {row['drop_points']:.2f} points (95% bound "
            f"{drop_bound(row):.2f} > {exporter.spec.max_drop}) even with "
            f"{len(tried[-1]['float_layers'])} layer(s) kept in float; not written "
            f"(the fp32 artifacts and any previous {final.name} are kept)"
        )
        row["published"] = False
    else:
        fidelity = {k: v for k, v in row.items() if k not in ("file", "providers")}
        published = dataclasses.replace(read_meta(staged), fidelity=fidelity)
        published = with_row_thresholds(published, row)  # an embedder's own calibrated thresholds
        with phases(f"{final.name} agreement", "label-free agreement with fp32 on every image of the run"):
            row["agreement_all"] = exporter.agreement_all(staged)
        fidelity = {**published.fidelity, "agreement_all": row["agreement_all"]}
        publish(staged, ready / final.name, dataclasses.replace(published, fidelity=fidelity))
        row["published"] = True
    result.rows.append(row)


def _report(run_dir: Path, spec: ExportSpec, eval_set, calibration, result: ExportResult, phases: _Phases) -> dict:
    cal = None
    if calibration is not None:
        cal = {"images": len(calibration), "hash": calibration.hash, "method": spec.calib_method, "skipped": calibration.skipped}
    reference = {
        "backend": "torch",
        "precision": "fp32",
        "split": "test",
        "n": len(eval_set.images),
        "unreadable": eval_set.skipped,
    }
    return {
        "run": str(run_dir),
        "reference": reference,
        "max_drop_points": spec.max_drop,
        "calibration": cal,
        "artifacts": result.rows,
        "fastest": fastest_per_format(result.rows),
        "failures": result.failures,
        "phases_s": phases.times,
    }


def export_run(run_dir: str | Path, spec: ExportSpec, data: str | Path | None = None) -> ExportResult:
    """Export ``run_dir`` as ``spec`` says; ``data``: the folder its split's files are in now (see ``Split.load``)."""
    run_dir = Path(run_dir)
    model, meta, task, split = _open_run(run_dir, spec, data)
    out_dir = Path(spec.out) if spec.out else run_dir / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out_dir)
    phases = _Phases()
    with phases("reference", f"torch fp32 on the {split.counts()['test']} test images"):
        eval_set = task.eval_set(run_dir, split, "test", meta.input_size)
        # embedders: every artifact's match threshold is calibrated on the val pairs through that artifact
        val_set = task.eval_set(run_dir, split, "val", meta.input_size) if task.calibrates_on_val else None
        reference = torch_reference(model, meta, eval_set.images)
    with phases("calibration", f"reading {spec.calib_images} train images (int8 calibration, drift reference)"):
        meta, calibration = _calibrate(model, meta, task, split, spec)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging.") as stage:
        ready = Path(stage) / "ready"  # finished artifacts and the report, moved into out_dir together at the end
        ready.mkdir()
        exporter = _Exporter(model, meta, spec, Path(stage), eval_set, reference, calibration, val_set, run_dir, split)
        for fmt, precision in spec.targets():
            final = out_dir / f"model_{precision}{FORMATS[fmt].suffix}"
            _build_target(exporter, fmt, precision, final, ready, phases, result)
        if spec.nms_in_graph:
            _with_graph_nms(exporter, result, Path(stage), ready)
        report = _report(run_dir, spec, eval_set, calibration, result, phases)
        (ready / "export_report.json").write_text(json.dumps(report, indent=1, default=float))
        publish_together(ready, out_dir)
    result.report, result.phases = out_dir / "export_report.json", phases.times
    return result


def _with_graph_nms(exporter: _Exporter, result: ExportResult, stage: Path, ready: Path) -> None:
    """``model_<precision>_nms.onnx`` beside every published ONNX artifact: the same graph (already gated) with
    ONNX NonMaxSuppression appended, measured like the others (its mAP uses the graph's selection)."""
    from edgecv.export.onnx_nms import nms_meta, onnx_nms

    for row in [r for r in result.rows if r["file"].endswith(".onnx") and r.get("published")]:
        source = ready / row["file"]
        final = source.with_name(source.stem + "_nms.onnx")
        staged = onnx_nms(source, ConvertSpec(stage / final.name, nms_meta(read_meta(source))))
        nms_row = {**exporter._evaluate(staged), "file": final.name, "nms_in_graph": True, "published": True}
        publish(
            staged,
            final,
            dataclasses.replace(
                read_meta(staged), fidelity={k: v for k, v in nms_row.items() if k not in ("file", "providers", "published")}
            ),
        )
        result.rows.append(nms_row)


def export(run: str | Path, data: str | Path | None = None, **options: Any) -> ExportResult:
    """``edgecv.export(run, formats=("onnx", "tflite"), int8=True, max_drop=1.0, ...)``: ``export_run`` with an
    ``ExportSpec`` of ``options`` (its fields, as ``edgecv export``'s flags)."""
    fields = {f.name for f in dataclasses.fields(ExportSpec)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise EdgecvError(f"export: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    if "formats" in options:
        options["formats"] = tuple(options["formats"])
    return export_run(run, ExportSpec(**options), data=data)
