"""The int8 gate on a model made deliberately hostile to int8, and its mixed-precision repair.

The hostility is the one measured in BENCHMARKS.md: a feature scaler folded into the linear head. The
head gains a term v * (f_j - mu_j) / sigma_j for the pooled feature j with the smallest spread, so its
weights for feature j are ~1/sigma_j larger than the rest; per-channel int8 weights then round every
other weight in the row to zero. fp32 is unharmed, plain int8 collapses, keeping `head` float repairs it.
"""

import numpy as np
import pytest
import torch

from edgecv.data.splits import Split
from edgecv.export.calibration import load_calibration
from edgecv.export.fidelity import load_eval_set, measure
from edgecv.export.gate import layer_sensitivity, recover
from edgecv.export.onnx_int8 import onnx_int8
from edgecv.export.run import load_run_model, torch_reference
from edgecv.export.spec import ConvertSpec
from edgecv.export.torch2onnx import torch2onnx
from edgecv.tasks import get_task


@pytest.fixture(scope="module")
def hostile(tiny_run):
    model, _, meta = load_run_model(tiny_run)
    split = Split.load(tiny_run / "split.json")
    cal = load_calibration(split.root, split.files["train"], split.labels["train"], 32, meta.input_size)
    with torch.no_grad():
        x = torch.from_numpy(np.concatenate(list(cal.inputs(meta, batch=32))))
        f = model.backbone(x)
        mu, sigma = f.mean(0), f.std(0)
        live = sigma > 0
        j = int(torch.where(live, sigma, torch.inf).argmin())
        w = model.head.weight
        sign = torch.tensor([(-1.0) ** k for k in range(w.shape[0])])
        # in standardized units: 10x a typical weight, as an unregularized fit gives a near-constant feature
        v = 10 * (w.abs() * sigma).mean() * sign
        w[:, j] += v / sigma[j]
        model.head.bias -= v * mu[j] / sigma[j]
    # every image of the tiny set (not only its 12 test images), so one flipped image is not the whole signal
    files = [f for name in ("train", "val", "test") for f in split.files[name]]
    labels = [y for name in ("train", "val", "test") for y in split.labels[name]]
    es = load_eval_set("all", split.root, files, labels, meta.input_size)
    return model.eval(), meta, cal, es, float(sigma[j])


def test_hostile_model_trips_the_gate_and_mixed_precision_recovers_it(hostile, tmp_path):
    model, meta, cal, es, sigma = hostile
    assert sigma < 0.05  # the folded scale is ~1/sigma: tens to thousands times the other weights
    reference = torch_reference(model, meta, es.images)
    fp32 = torch2onnx(model, ConvertSpec(tmp_path / "fp32.onnx", meta))

    def build(keep):
        return onnx_int8(fp32, ConvertSpec(tmp_path / f"int8_{len(keep)}.onnx", meta, "int8", cal, keep_float=keep))

    def evaluate(path):
        return measure(path, es, reference, get_task("classify").fidelity_metric(), threads=1)

    ranking = layer_sensitivity(model, cal, meta)
    assert ranking[0][0] == "head"
    result = recover(build, evaluate, lambda: ranking, max_drop=1.0)
    first, last = result.attempts[0], result.attempts[-1]
    assert first["float_layers"] == [] and first["drop_points"] > 1.0  # the gate trips
    assert result.attempts[0]["agreement"] < 0.9
    assert result.path is not None and result.keep_float == ("head",)  # and one float layer repairs it
    assert last["drop_points"] <= 1.0 and result.row["top1_agreement"] >= 0.9


def test_gate_gives_up_when_the_budget_cannot_be_met(hostile, tmp_path):
    model, meta, cal, es, _ = hostile
    reference = torch_reference(model, meta, es.images)
    fp32 = torch2onnx(model, ConvertSpec(tmp_path / "fp32.onnx", meta))
    result = recover(
        lambda keep: onnx_int8(fp32, ConvertSpec(tmp_path / "q.onnx", meta, "int8", cal, keep_float=keep)),
        lambda p: measure(p, es, reference, get_task("classify").fidelity_metric(), threads=1),
        lambda: layer_sensitivity(model, cal, meta),
        max_drop=1.0,
        max_float=0,
    )
    assert result.path is None and len(result.attempts) == 1 and result.row["drop_points"] > 1.0
