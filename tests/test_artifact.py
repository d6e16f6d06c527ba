import json

import pytest

from edgecv.artifact import SCHEMA_VERSION, ArtifactMeta, meta_from_props
from edgecv.errors import EdgecvError


def meta(**kw) -> ArtifactMeta:
    base = dict(task="classify", labels=["cat", "dog"], input_size=(160, 160), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return ArtifactMeta(**{**base, **kw})


def test_roundtrip_through_json():
    m = meta(precision="int8", input_quant={"scale": 0.0078, "zero_point": 0}, calibration_hash="abc")
    assert ArtifactMeta.from_json(m.to_json()) == m
    assert meta_from_props({"edgecv": m.to_json()}, "x.onnx") == m


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(task="segment"), "task 'segment' is not one of"),
        (dict(layout="CHW"), "layout 'CHW'"),
        (dict(labels=["only"]), r"a classify artifact needs at least 2 label\(s\), got 1"),
        (dict(task="detect", labels=[]), r"a detect artifact needs at least 1 label\(s\), got 0"),
        (dict(std=(1, 0, 1)), "std > 0"),
        (dict(input_size=(0, 5)), "input_size"),
    ],
)
def test_invalid_metadata_is_refused(bad, match):
    with pytest.raises(EdgecvError, match=match):
        meta(**bad)


def test_foreign_or_future_metadata_is_refused():
    with pytest.raises(EdgecvError, match="carries no edgecv metadata"):
        meta_from_props({}, "m.onnx")
    newer = json.loads(meta().to_json()) | {"schema": SCHEMA_VERSION + 1}
    with pytest.raises(EdgecvError, match="newer than this edgecv"):
        ArtifactMeta.from_json(json.dumps(newer), "m.onnx")
    with pytest.raises(EdgecvError, match=r"unknown metadata fields \['colour'\]"):
        ArtifactMeta.from_json(json.dumps(json.loads(meta().to_json()) | {"colour": "RGB"}))
