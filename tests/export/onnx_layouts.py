"""Small ONNX models in the output layouts other tools export, built here with onnx.helper (no Ultralytics in the test
dependencies): an edgecv detector's graph re-wired to YOLOv8/11's ``[1, 4+nc, N]`` or YOLOv10/26's end-to-end
``[1, K, 6]``, a classifier ending in a softmax, and an int8-hostile classifier; plus numpy reference decoders written
from the layouts' definitions, to check the runtime's decoding against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _strip(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph without edgecv's metadata (a model from elsewhere), its batch axis fixed at 1 as exports have it."""
    del proto.metadata_props[:]
    for v in [*proto.graph.input, *proto.graph.output]:
        v.type.tensor_type.shape.dim[0].dim_value = 1
    return proto


def _replace_outputs(proto: onnx.ModelProto, nodes, inits, outputs, names: list[str] | None) -> onnx.ModelProto:
    proto.graph.node.extend(nodes)
    proto.graph.initializer.extend(inits)
    del proto.graph.output[:]
    proto.graph.output.extend(outputs)
    del proto.graph.value_info[:]
    if names is not None:  # as Ultralytics stores them: a dict literal, class id -> name
        proto.metadata_props.add(key="names", value=repr(dict(enumerate(names))))
    onnx.checker.check_model(proto)
    return proto


def yolo_layout(src: Path, dst: Path, names: list[str] | None) -> Path:
    """edgecv's (boxes xyxy (1, N, 4), scores (1, N, C)) as one (1, 4 + C, N) tensor: cx, cy, w, h, class scores."""
    p = _strip(onnx.load(str(src)))
    half = numpy_helper.from_array(np.float32(0.5), "half")
    nodes = [
        helper.make_node("Split", ["boxes", "two2"], ["xy1", "xy2"], axis=2),
        helper.make_node("Add", ["xy1", "xy2"], ["sum"]),
        helper.make_node("Mul", ["sum", "half"], ["cxcy"]),
        helper.make_node("Sub", ["xy2", "xy1"], ["wh"]),
        helper.make_node("Concat", ["cxcy", "wh", "scores"], ["rows"], axis=2),
        helper.make_node("Transpose", ["rows"], ["output0"], perm=[0, 2, 1]),
    ]
    n, c = (d.dim_value for d in p.graph.output[1].type.tensor_type.shape.dim[1:])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + c, n])
    inits = [half, numpy_helper.from_array(np.int64([2, 2]), "two2")]
    onnx.save(_replace_outputs(p, nodes, inits, [out], names), str(dst))
    return dst


def yolo_e2e_layout(src: Path, dst: Path, names: list[str] | None, k: int = 100) -> Path:
    """edgecv's outputs as the end-to-end head gives them: the ``k`` best boxes, each x1, y1, x2, y2, score, class."""
    p = _strip(onnx.load(str(src)))
    nodes = [
        helper.make_node("ReduceMax", ["scores", "ax2"], ["best"], keepdims=1),
        helper.make_node("ArgMax", ["scores"], ["cls_i"], axis=2, keepdims=1),
        helper.make_node("Cast", ["cls_i"], ["cls"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["boxes", "best", "cls"], ["rows"], axis=2),
        helper.make_node("Squeeze", ["best", "ax02"], ["flat"]),
        helper.make_node("TopK", ["flat", "k"], ["top", "idx"], axis=0),
        helper.make_node("Gather", ["rows", "idx"], ["output0"], axis=1),
    ]
    inits = [
        numpy_helper.from_array(np.int64([2]), "ax2"),
        numpy_helper.from_array(np.int64([0, 2]), "ax02"),
        numpy_helper.from_array(np.int64([k]), "k"),
    ]
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, k, 6])
    onnx.save(_replace_outputs(p, nodes, inits, [out], names), str(dst))
    return dst


def softmax_classifier(src: Path, dst: Path) -> Path:
    """An edgecv classifier's logits through a softmax, without metadata (a Keras-style probabilities output)."""
    p = _strip(onnx.load(str(src)))
    logits = p.graph.output[0]
    nodes = [helper.make_node("Softmax", [logits.name], ["probs"], axis=1)]
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, logits.type.tensor_type.shape.dim[1].dim_value])
    onnx.save(_replace_outputs(p, nodes, [], [out], None), str(dst))
    return dst


def hostile_classifier(dst: Path, hostile: int, layers: int = 20, size: int = 32) -> Path:
    """Tells red from blue images by their mean colour through ``layers`` 8x8 Gemms, ``hostile`` of which hide an
    outlier weight on a channel that is always 0: harmless in float, but per-channel int8 then gives every other
    weight of the row a step of 1000/127 and rounds the identity to 0, so those layers erase the colour."""
    w_in = np.zeros((8, 3), np.float32)
    w_in[[0, 1, 2], [0, 1, 2]] = 1  # channels 0-2: mean R, G, B; 3-7: 0
    eye = np.eye(8, dtype=np.float32)
    spoilt = eye.copy()
    spoilt[:, 7] = 1000
    w_out = np.zeros((2, 8), np.float32)
    w_out[0, [0, 2]], w_out[1, [0, 2]] = (10, -10), (-10, 10)  # logits: red - blue, blue - red
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["h0"]),
        helper.make_node("Gemm", ["h0", "w_in"], ["h1"], transB=1, name="gemm_in"),
    ]
    inits = [
        numpy_helper.from_array(w_in, "w_in"),
        numpy_helper.from_array(w_out, "w_out"),
        numpy_helper.from_array(eye, "eye"),
        numpy_helper.from_array(spoilt, "spoilt"),
    ]
    for i in range(layers):
        nodes.append(
            helper.make_node("Gemm", [f"h{i + 1}", "spoilt" if i < hostile else "eye"], [f"h{i + 2}"], transB=1, name=f"gemm{i}")
        )
    nodes.append(helper.make_node("Gemm", [f"h{layers + 1}", "w_out"], ["logits"], transB=1, name="gemm_out"))
    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(dst))
    return dst


def reference_yolo(y: np.ndarray, conf: float, iou: float) -> list[tuple[int, float, tuple[float, ...]]]:
    """(class, score, xyxy) per kept box of one ``[4 + nc, N]`` output, decoded from the layout's definition with
    OpenCV's NMS per class (cv2.dnn.NMSBoxes on x, y, w, h boxes)."""
    import cv2

    cx, cy, w, h = y[:4]
    scores = y[4:]
    cls, best = scores.argmax(0), scores.max(0)
    out = []
    for c in np.unique(cls[best >= conf]):
        idx = np.flatnonzero((cls == c) & (best >= conf))
        boxes = [[float(cx[i] - w[i] / 2), float(cy[i] - h[i] / 2), float(w[i]), float(h[i])] for i in idx]
        for k in np.asarray(cv2.dnn.NMSBoxes(boxes, best[idx].tolist(), conf, iou)).reshape(-1):
            i = idx[k]
            out.append((int(c), float(best[i]), (cx[i] - w[i] / 2, cy[i] - h[i] / 2, cx[i] + w[i] / 2, cy[i] + h[i] / 2)))
    return sorted(out, key=lambda r: -r[1])


def reference_e2e(y: np.ndarray, conf: float) -> list[tuple[int, float, tuple[float, ...]]]:
    """The rows of one ``[K, 6]`` output that reach ``conf``, best first (the model chose them: no NMS)."""
    rows = [r for r in y if r[4] >= conf]
    return sorted([(int(round(r[5])), float(r[4]), tuple(r[:4])) for r in rows], key=lambda r: -r[1])
