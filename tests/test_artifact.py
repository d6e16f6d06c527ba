import json

import pytest

from edgecv.artifact import (
    SCHEMA_VERSION,
    ArtifactMeta,
    ClassifyDecoder,
    ClassifyThresholds,
    DetectDecoder,
    DetectThresholds,
    EmbedDecoder,
    EmbedThresholds,
    NmsInGraph,
    meta_from_props,
)
from edgecv.errors import EdgecvError

DETECT = DetectDecoder("ltrb-points", ("boxes", "scores"), None, strides=(8, 16))
EMBED = EmbedDecoder("embedding", ("embedding",), 64, True, "cosine", "0123abcd", "haar-crop")
CALIBRATED = EmbedThresholds(target_far=1e-3, match=0.61, verify=0.55, track_gate=0.4, val_tar=0.9, val_far=8e-4)


def meta(**kw) -> ArtifactMeta:
    base = dict(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=["cat", "dog"],
        input_size=(160, 160),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )
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
        (dict(task="detect", labels=[], decoder=DETECT, thresholds=DetectThresholds(0.25, 0.45, 0.6)), r"needs at least 1 label"),
        (dict(task="detect"), "a detect artifact's decoder is a DetectDecoder, got ClassifyDecoder"),
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


@pytest.mark.parametrize(
    "kw",
    [
        dict(task="detect", decoder=DETECT, thresholds=DetectThresholds(conf=0.25, iou=0.45, track=0.6)),
        dict(
            task="detect",
            decoder=DetectDecoder("yolo", ("output0",), NmsInGraph(0.45, 0.01, 100), anchors=2100, transposed=False),
            thresholds=DetectThresholds(conf=0.25, iou=0.45, track=0.6),
        ),
        dict(task="embed", labels=[], decoder=EMBED, thresholds=CALIBRATED),
    ],
)
def test_every_task_s_typed_parts_roundtrip(kw):
    m = meta(**kw)
    back = ArtifactMeta.from_json(m.to_json())
    assert back == m and type(back.decoder) is type(m.decoder) and type(back.thresholds) is type(m.thresholds)


def _embed_json(**changes) -> dict:
    data = json.loads(meta(task="embed", labels=[], decoder=EMBED, thresholds=CALIBRATED).to_json())
    for path, value in changes.items():
        part, name = path.split("__")
        if value is KeyError:
            del data[part][name]
        else:
            data[part][name] = value
    return data


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(thresholds__match=KeyError), r"m.onnx: metadata thresholds.match is missing"),
        (dict(thresholds__target_far=None), r"thresholds.target_far must be a float, got None"),
        (dict(decoder__dim=KeyError), r"metadata decoder.dim is missing"),
        (dict(decoder__dim="64"), r"decoder.dim must be a int, got '64'"),
        (dict(decoder__anchors=3), r"decoder has unknown fields \['anchors'\]"),
        (dict(decoder__chip="aligned"), r"decoder.chip 'aligned' is not one of"),
    ],
)
def test_a_missing_or_mistyped_field_is_an_error_naming_it(changes, match):
    with pytest.raises(EdgecvError, match=match):
        ArtifactMeta.from_json(json.dumps(_embed_json(**changes)), "m.onnx")


def test_a_detector_decoder_takes_exactly_its_layout_s_fields():
    with pytest.raises(EdgecvError, match="decoder.rows is missing for a 'yolo-e2e' detector"):
        DetectDecoder("yolo-e2e", ("output0",), None)
    with pytest.raises(EdgecvError, match="decoder.strides is not a field for a 'yolo' detector"):
        DetectDecoder("yolo", ("output0",), None, strides=(8,), anchors=10, transposed=True)


def test_an_uncalibrated_threshold_reads_as_none_and_is_refused_where_needed():
    data = _embed_json(thresholds__match=None, thresholds__verify=None)
    t = ArtifactMeta.from_json(json.dumps(data), "m.onnx").thresholds
    assert t.match is None and t.target_far == 1e-3
    with pytest.raises(EdgecvError, match=r"m.onnx: its thresholds.match was never calibrated .*; pass --match-threshold"):
        t.required("match", "m.onnx", "pass --match-threshold")


def test_schema_1_artifacts_read_with_what_schema_1_readers_assumed():
    v1_classify = json.loads(meta().to_json()) | {"schema": 1, "decoder": None, "thresholds": {}}
    assert ArtifactMeta.from_json(json.dumps(v1_classify)).decoder == ClassifyDecoder("logits", ("output",))
    detect = {"outputs": ["boxes", "scores"], "boxes": "xyxy-input-pixels", "scores": "sigmoid", "strides": [8, 16]}
    v1_detect = json.loads(meta(task="detect", decoder=DETECT, thresholds=DetectThresholds(0.25, 0.45, 0.6)).to_json())
    v1_detect |= {"schema": 1, "decoder": detect, "thresholds": {"conf": 0.25, "iou": 0.45}}
    read = ArtifactMeta.from_json(json.dumps(v1_detect))
    assert read.decoder == DETECT and read.thresholds == DetectThresholds(0.25, 0.45, 0.6)  # (schema 2's, then)
    v1_embed = _embed_json() | {"schema": 1}
    v1_embed["thresholds"] = {"match": 0.61, "verify": 0.55, "target_far": 1e-3, "val_tar": float("nan"), "val_far": 0.0}
    t = ArtifactMeta.from_json(json.dumps(v1_embed)).thresholds
    assert (t.match, t.track_gate, t.val_tar, t.val_far) == (0.61, None, None, 0.0)
    imported = _embed_json() | {"schema": 1, "thresholds": {"target_far": 0.01}}  # an import without --data
    assert ArtifactMeta.from_json(json.dumps(imported)).thresholds.match is None


def test_schema_2_detectors_track_from_what_schema_2_runtimes_used_and_schema_3_needs_the_field():
    v2 = json.loads(meta(task="detect", decoder=DETECT, thresholds=DetectThresholds(0.3, 0.5, 0.25)).to_json())
    v2 |= {"schema": 2, "thresholds": {"conf": 0.3, "iou": 0.5}}
    assert ArtifactMeta.from_json(json.dumps(v2)).thresholds == DetectThresholds(0.3, 0.5, 0.6)  # imported or not
    v3 = v2 | {"schema": SCHEMA_VERSION}
    with pytest.raises(EdgecvError, match=r"m.onnx: metadata thresholds.track is missing"):
        ArtifactMeta.from_json(json.dumps(v3), "m.onnx")
    classify = json.loads(meta().to_json()) | {"schema": 2}
    assert ArtifactMeta.from_json(json.dumps(classify)) == meta()  # the other tasks' parts are as they were
