"""ONNX detector -> the same graph with ONNX ``NonMaxSuppression`` appended (``--nms-in-graph``), for runtimes that
want NMS inside the model. The graph keeps its ``boxes`` and ``scores`` outputs and adds ``selected`` (K, 3) int64
rows of (batch, class, box), per class as ONNX defines it (a box may be kept for two classes). Thresholds are
fixed in the graph and recorded in the metadata's decoder; the runtime reads ``selected`` instead of running its
own NMS (``--conf`` can still raise the score threshold, not lower it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgecv._deps import require
from edgecv.artifact import NmsInGraph
from edgecv.artifact.onnx import set_onnx_meta
from edgecv.errors import EdgecvError
from edgecv.export._atomic import atomic_output
from edgecv.export._registry import register_converter
from edgecv.export.spec import ConvertSpec

NMS_DEFAULTS = {"iou": 0.45, "conf": 0.01, "max_per_class": 100}  # low conf: --conf filters on the device


def nms_meta(
    meta, iou: float = NMS_DEFAULTS["iou"], conf: float = NMS_DEFAULTS["conf"], max_per_class: int = NMS_DEFAULTS["max_per_class"]
):
    decoder = dataclasses.replace(
        meta.decoder,
        outputs=(*meta.decoder.outputs, "selected"),
        nms_in_graph=NmsInGraph(iou=float(iou), conf=float(conf), max_per_class=int(max_per_class)),
    )
    return dataclasses.replace(meta, decoder=decoder)


@register_converter("onnx_nms", source="onnx")
def onnx_nms(source: str | Path, spec: ConvertSpec) -> Path:
    """Append NonMaxSuppression to the detector ONNX ``source`` (fp32 or int8) into ``spec.out``; ``spec.meta``
    must come from ``nms_meta`` (it carries the thresholds)."""
    onnx = require("onnx", "export", "ONNX NMS")
    from onnx import TensorProto, helper

    nms = getattr(spec.meta.decoder, "nms_in_graph", None)
    if nms is None:
        raise EdgecvError(f"{source}: --nms-in-graph is for detectors (metadata from nms_meta)")
    proto = onnx.load(str(source))
    g = proto.graph
    names = [o.name for o in g.output]
    if names[:2] != ["boxes", "scores"]:
        raise EdgecvError(f"{source}: expected outputs boxes, scores; found {names}")
    g.initializer.extend(
        [
            helper.make_tensor("nms_max_per_class", TensorProto.INT64, [1], [nms.max_per_class]),
            helper.make_tensor("nms_iou", TensorProto.FLOAT, [1], [nms.iou]),
            helper.make_tensor("nms_conf", TensorProto.FLOAT, [1], [nms.conf]),
        ]
    )
    g.node.extend(
        [
            helper.make_node("Transpose", ["scores"], ["nms_scores_bca"], perm=[0, 2, 1], name="nms_transpose"),
            helper.make_node(
                "NonMaxSuppression",
                ["boxes", "nms_scores_bca", "nms_max_per_class", "nms_iou", "nms_conf"],
                ["selected"],
                center_point_box=0,
                name="nms",
            ),
        ]
    )
    g.output.append(helper.make_tensor_value_info("selected", TensorProto.INT64, ["selected", 3]))
    set_onnx_meta(proto, spec.meta)
    onnx.checker.check_model(proto)
    with atomic_output(Path(spec.out)) as tmp:
        onnx.save(proto, str(tmp))
    return Path(spec.out)
