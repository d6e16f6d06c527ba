import subprocess
import sys

import numpy as np
import pytest
import torch

from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
from edgecv.export.spec import ConvertSpec
from edgecv.export.torch2onnx import torch2onnx
from edgecv.models import create_backbone
from edgecv.models.classifier import Classifier
from edgecv.runtime.preprocess import classify_input_chw
from tests.runtime.test_preprocess import BLOCK_TORCH


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return Classifier(create_backbone("mobilenetv3_small_100", pretrained="none"), 3).eval()


def _meta() -> ArtifactMeta:
    return ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=["a", "b", "c"],
        input_size=(64, 64),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        source={"backbone": "mobilenetv3_small_100"},
    )


def test_onnx_runs_without_torch_and_matches_torch(classifier, tmp_path):
    path = torch2onnx(classifier, ConvertSpec(tmp_path / "m.onnx", _meta()))
    rgb = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", rgb)
    x = torch.from_numpy(classify_input_chw(rgb, 64, _meta().mean, _meta().std))[None]
    with torch.no_grad():
        np.save(tmp_path / "expected.npy", classifier(x).numpy())
    code = (
        BLOCK_TORCH
        + f"""
import numpy as np, onnxruntime as ort
from edgecv.artifact import meta_from_props
from edgecv.runtime.preprocess import classify_input_chw
sess = ort.InferenceSession({str(path)!r}, providers=['CPUExecutionProvider'])
meta = meta_from_props(sess.get_modelmeta().custom_metadata_map, 'm.onnx')
assert meta.labels == ['a', 'b', 'c'] and meta.input_size == (64, 64)
rgb = np.load({str(tmp_path / "rgb.npy")!r})
x = classify_input_chw(rgb, meta.input_size[0], meta.mean, meta.std)[None]
x4 = np.repeat(x, 4, axis=0)  # the batch dimension is dynamic
out = sess.run(None, {{'input': x4}})[0]
err = np.abs(out - np.load({str(tmp_path / "expected.npy")!r})).max()
assert out.shape == (4, 3) and err < 1e-4, err
print('ok')
"""
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_failed_export_leaves_the_previous_artifact_intact(classifier, tmp_path):
    path = torch2onnx(classifier, ConvertSpec(tmp_path / "m.onnx", _meta()))
    before = path.read_bytes()

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("cannot trace this")

    with pytest.raises(Exception, match="cannot trace this"):
        torch2onnx(Broken(), ConvertSpec(path, _meta()))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
