"""The task-specific parts of ``edgecv import`` that tasks/ puts together (each task's ``import_decoder`` and
``import_data``), and the int8 gate's pieces for a graph without torch modules: its decoder tail and a measured
ranking of its nodes. See ``edgecv.export.import_model``."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecv._deps import require
from edgecv.artifact import ArtifactMeta, ClassifyDecoder, DetectDecoder, EmbedDecoder
from edgecv.errors import EdgecvError
from edgecv.export.calibration import Calibration, load_calibration, raw_frames
from edgecv.export.fidelity import EvalSet, detect_eval_set, load_eval_set
from edgecv.runtime.backends import create_backend
from edgecv.runtime.drift import build_reference, frame_stats
from edgecv.runtime.postprocess import get_postprocess
from edgecv.runtime.preprocess import prepare_frame

DETECT_LAYOUTS = ("yolo", "yolo-e2e")
WEIGHTED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
SQNR_INT8_DB = 6.02 * 8 + 1.76  # an ideal 8-bit quantizer on a full-range signal


@dataclass
class ImportData:
    """``--data`` cut in two: the test part (every fidelity row) and the calibration part (int8, thresholds)."""

    eval_set: EvalSet
    calibration: Calibration
    val_set: EvalSet | None  # what an embedder's thresholds are calibrated on (its calibration people)
    split: dict[str, Any]  # recorded in import_report.json


def one_output(outputs: list[np.ndarray], task: str, path: Path) -> np.ndarray:
    if len(outputs) != 1:
        raise EdgecvError(
            f"{path}: has {len(outputs)} outputs {[list(o.shape) for o in outputs]}; an imported {task} model has one"
        )
    return outputs[0]


def vector_output(outputs: list[np.ndarray], task: str, path: Path) -> np.ndarray:
    y = one_output(outputs, task, path)
    if y.ndim != 2:
        raise EdgecvError(f"{path}: output {list(y.shape)}; a {task} model outputs [1, N]")
    return y


def classes_decoder(outputs: list[np.ndarray], labels: list[str], path: Path) -> ClassifyDecoder:
    """Class scores ``[1, C]``: logits, or probabilities when the probe's rows are already a distribution."""
    y = vector_output(outputs, "classify", path)
    if y.shape[1] != len(labels):
        raise EdgecvError(f"{path}: outputs {y.shape[1]} classes, the labels name {len(labels)}")
    probs = bool(np.all(y >= 0) and np.all(y <= 1) and np.allclose(y.sum(1), 1, atol=1e-3))
    return ClassifyDecoder(type="probabilities" if probs else "logits", outputs=("output",))


def yolo_decoder(
    outputs: list[np.ndarray], labels: list[str], path: Path, layout: str | None, extra: dict[str, str]
) -> DetectDecoder:
    """``layout`` given, or from the model's own metadata (Ultralytics' ``end2end``) and output shape."""
    shape, nc = one_output(outputs, "detect", path).shape, len(labels)
    layout = layout or (
        "yolo-e2e"
        if str(extra.get("end2end", "")).lower() == "true" or (len(shape) == 3 and shape[2] == 6 and shape[1] != 4 + nc)
        else "yolo"
    )
    if layout == "yolo-e2e":
        if len(shape) != 3 or shape[2] != 6:
            raise EdgecvError(
                f"{path}: output {list(shape)} is not the end-to-end layout [1, K, 6] (x1, y1, x2, y2, score, class)"
            )
        return DetectDecoder(type=layout, outputs=("output0",), nms_in_graph=None, rows=int(shape[1]))
    if len(shape) == 3 and shape[1] == 4 + nc:
        return DetectDecoder(type="yolo", outputs=("output0",), nms_in_graph=None, anchors=int(shape[2]), transposed=False)
    if len(shape) == 3 and shape[2] == 4 + nc:
        return DetectDecoder(type="yolo", outputs=("output0",), nms_in_graph=None, anchors=int(shape[1]), transposed=True)
    raise EdgecvError(
        f"{path}: output {list(shape)} is not the YOLO layout [1, 4 + {nc} classes, N] for the "
        f"{nc} labels given (a different number of classes, or pass --layout yolo-e2e)"
    )


def embedding_decoder(outputs: list[np.ndarray], path: Path, digest: str) -> EmbedDecoder:
    y = vector_output(outputs, "embed", path)
    return EmbedDecoder(
        type="embedding",
        outputs=("embedding",),
        dim=int(y.shape[1]),
        normalized=bool(np.allclose(np.linalg.norm(y, axis=1), 1, 1e-3)),
        similarity="cosine",
        embedder_id=digest,
        chip="detector-crop",
    )


def _root(spec) -> Path:
    root = Path(spec.data)
    if not root.is_dir():
        raise EdgecvError(f"--data {root}: no such folder")
    return root


def _to_model(found: list[str], meta: ArtifactMeta, root: Path, what: str) -> list[int]:
    unknown = sorted(set(found) - set(meta.labels))
    if unknown:
        raise EdgecvError(f"--data {root}: {what} {unknown} are not among the model's labels")
    return [meta.labels.index(c) for c in found]


def detection_data(spec, meta: ArtifactMeta) -> ImportData:
    """A COCO or YOLO set: images split at random (seeded), classes matched to the model's labels by name."""
    from edgecv.data.detection import load_detection

    root = _root(spec)
    ds = load_detection(root, spec.annotations)
    to_model = np.asarray(_to_model(ds.classes, meta, root, "classes"), np.int64)
    ds = dataclasses.replace(
        ds, classes=list(meta.labels), samples=[dataclasses.replace(s, classes=to_model[s.classes]) for s in ds.samples]
    )
    files = sorted(s.file for s in ds.samples)
    order = np.random.default_rng(spec.seed).permutation(len(files))
    n_test = max(1, int(round(len(files) * spec.test_fraction)))
    test, cal = sorted(files[i] for i in order[:n_test]), sorted(files[i] for i in order[n_test:])
    if not cal:
        raise EdgecvError(f"--data {root}: {len(files)} image(s) are too few to split into calibration and test")
    es = detect_eval_set("test", ds, test, [0] * len(test), meta.input_size)
    calibration = load_calibration(ds.root, cal, [0] * len(cal), spec.calib_images, meta.input_size, spec.seed, meta.resize)
    return ImportData(
        es, calibration, None, {"root": str(root.resolve()), "seed": spec.seed, "by": "image", "test": test, "calibration": cal}
    )


def folder_data(spec, meta: ArtifactMeta, by_identity: bool) -> ImportData:
    """A folder per class (stratified split; folders matched to the labels by name) or per person (split by
    identity: nobody is in both parts, and the calibration people also calibrate the thresholds)."""
    from edgecv.data.faces import identity_split
    from edgecv.data.splits import make_split

    root = _root(spec)
    if by_identity:
        split = identity_split(root, spec.test_fraction, 0.0, spec.seed)
        labels = {s: split.labels[s] for s in ("train", "test")}
    else:
        split = make_split(root, spec.test_fraction, 0.0, spec.seed)
        to_model = _to_model(split.classes, meta, root, "class folders")
        labels = {s: [to_model[k] for k in split.labels[s]] for s in ("train", "test")}
    es = load_eval_set("test", split.root, split.files["test"], labels["test"], meta.input_size, meta.resize)
    val = (
        load_eval_set("calibration", split.root, split.files["train"], labels["train"], meta.input_size, meta.resize)
        if by_identity
        else None
    )
    calibration = load_calibration(
        split.root, split.files["train"], labels["train"], spec.calib_images, meta.input_size, spec.seed, meta.resize
    )
    return ImportData(
        es,
        calibration,
        val,
        {
            "root": str(Path(split.root).resolve()),
            "seed": spec.seed,
            "by": "identity" if by_identity else "class",
            "test": split.files["test"],
            "calibration": split.files["train"],
            "skipped": split.skipped,
        },
    )


def drift_reference(path: Path, meta: ArtifactMeta, root: str, files: tuple[str, ...]) -> dict[str, Any]:
    """The drift monitor's reference, computed as the device computes it, through the imported model itself."""
    post = get_postprocess(meta.task)
    rows = []
    with create_backend(path, threads=1) as backend:
        for bgr in raw_frames(root, files):
            x, _ = prepare_frame(bgr, meta, "BGR")
            conf = post.confidence(post.to_canonical(backend.infer(x[None]), meta), 0.25)
            rows.append({**frame_stats(bgr, "BGR"), "confidence": conf})
    return build_reference(rows, 0.25)


def decoder_tail(proto) -> list[str]:
    """Nodes between the last weighted layer (Conv, Gemm, MatMul) and each graph output: the model's decoding
    (box arithmetic, sigmoid/softmax scores, concatenations of both), kept in float by the int8 converter."""
    producer = {o: n for n in proto.graph.node for o in n.output}
    tail, todo, seen = set(), [o.name for o in proto.graph.output], set()
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in seen or node.op_type in WEIGHTED_OPS:
            continue
        seen.add(node.name)
        tail.add(node.name)
        todo.extend(node.input)
    return [n.name for n in proto.graph.node if n.name in tail]


def activation_ranking(
    fp32: Path, int8: Path, calibration: Calibration, meta: ArtifactMeta, n: int = 8
) -> list[tuple[str, float]]:
    """(node, dB) for every node whose output int8 quantizes, worst first: how much the signal-to-quantization-noise
    ratio of the int8 model's tensors against the float model's falls across the node (its output's SQNR minus its
    worst input's), measured with onnxruntime's ``qdq_loss_debug`` on ``n`` calibration images. The loss a node adds
    itself (its weights' rounding, its output's range), not what it inherits from the layers before it."""
    onnx = require("onnx", "import", "edgecv import")
    from onnxruntime.quantization import qdq_loss_debug as dbg

    from edgecv.export.onnx_int8 import _reader

    proto = onnx.load(str(fp32), load_external_data=False)
    batches = list(calibration.inputs(meta))[:n]
    acts = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in (int8, fp32):
            aug = Path(tmp) / f"aug_{model.name}"
            dbg.modify_model_output_intermediate_tensors(str(model), str(aug))
            acts.append(dbg.collect_activations(str(aug), _reader(batches, proto.graph.input[0].name)))
    # capped at what an ideal 8-bit quantizer gives a full-range signal (SQNR_INT8_DB): a tensor int8 leaves
    # exact (the graph input) must not make the first layer after it look like the worst
    sqnr = {
        t: min(SQNR_INT8_DB, dbg.compute_signal_to_quantization_noice_ratio(m["float"], m["post_qdq"]))
        for t, m in dbg.create_activation_matching(*acts).items()
        if m.get("float")
    }
    ranked = []
    for node in proto.graph.node:
        outs = [sqnr[o] for o in node.output if o in sqnr]
        ins = [sqnr[i] for i in node.input if i in sqnr]
        if outs:
            ranked.append((node.name, min(outs) - (min(ins) if ins else max(outs))))
    return sorted(ranked, key=lambda r: r[1])
