"""The artifact metadata contract between the train side and the device side (standard library only).

Export writes one ``ArtifactMeta`` into every artifact (ONNX ``metadata_props`` under the key ``edgecv``, a
TFLite metadata entry, a TensorRT engine's sidecar); the runtime reads it back and needs nothing else: no
labels.txt, no recipe. ``decoder`` and ``thresholds`` are typed per task (``contract``).

Schema versions: 3 (this one) adds a detector's tracking threshold (``thresholds.track``); 2 typed the decoder and
thresholds. Older artifacts are read through ``_upgrade``, which writes out what their readers assumed when a field
was absent, and nothing more: a schema 1 embedder without a ``match`` threshold reads as "never calibrated", a
schema 2 detector tracks from 0.6, as schema 2's runtime tracked every detector.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Union

from edgecv.artifact.contract import (
    CONTRACTS,
    ClassifyDecoder,
    ClassifyThresholds,
    DetectDecoder,
    DetectThresholds,
    EmbedDecoder,
    EmbedThresholds,
    check_part,
    parse_part,
)
from edgecv.errors import EdgecvError

SCHEMA_VERSION = 3
META_KEY = "edgecv"
TASKS = ("classify", "detect", "embed")
MIN_LABELS = {"classify": 2, "detect": 1, "embed": 0}  # a classifier tells two classes apart; a detector finds one
LAYOUTS = ("NCHW", "NHWC")
COLORS = ("RGB", "BGR")
PRECISIONS = ("fp32", "fp16", "int8")
RESIZES = ("stretch", "letterbox")
Decoder = Union[ClassifyDecoder, DetectDecoder, EmbedDecoder]
Thresholds = Union[ClassifyThresholds, DetectThresholds, EmbedThresholds]


@dataclass(frozen=True)
class ArtifactMeta:
    task: str
    labels: list[str]
    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    decoder: Decoder
    thresholds: Thresholds
    layout: str = "NCHW"
    color: str = "RGB"
    resize: str = "stretch"
    precision: str = "fp32"
    input_quant: dict[str, float] | None = None  # {"scale": s, "zero_point": z} when the input tensor is int8
    source: dict[str, Any] = field(default_factory=dict)  # backbone, weights, recipe hash, edgecv version
    calibration_hash: str | None = None
    fidelity: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None  # reference input statistics (edgecv.runtime.drift.build_reference)
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        checks = (
            ("task", self.task, TASKS),
            ("layout", self.layout, LAYOUTS),
            ("color", self.color, COLORS),
            ("precision", self.precision, PRECISIONS),
            ("resize", self.resize, RESIZES),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                raise EdgecvError(f"artifact metadata: {name} {value!r} is not one of {', '.join(allowed)}")
        check_part(self.task, "decoder", self.decoder)
        check_part(self.task, "thresholds", self.thresholds)
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise EdgecvError(f"artifact metadata: input_size must be (height, width), got {self.input_size!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise EdgecvError("artifact metadata: mean and std need 3 values each, std > 0")
        if len(self.labels) < MIN_LABELS[self.task]:
            raise EdgecvError(
                f"artifact metadata: a {self.task} artifact needs at least {MIN_LABELS[self.task]} "
                f"label(s), got {len(self.labels)}"
            )
        if self.precision == "int8" and self.input_quant is not None and set(self.input_quant) != {"scale", "zero_point"}:
            raise EdgecvError("artifact metadata: input_quant needs exactly scale and zero_point")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "artifact") -> "ArtifactMeta":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EdgecvError(f"{source}: edgecv metadata is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise EdgecvError(f"{source}: edgecv metadata is not a JSON object")
        schema = data.get("schema")
        if not isinstance(schema, int) or schema < 1:
            raise EdgecvError(f"{source}: edgecv metadata has no valid schema version (got {schema!r})")
        if schema > SCHEMA_VERSION:
            raise EdgecvError(
                f"{source}: metadata schema {schema} is newer than this edgecv "
                f"understands ({SCHEMA_VERSION}); upgrade edgecv on the device"
            )
        if schema < SCHEMA_VERSION:
            data = _upgrade(data, schema)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise EdgecvError(f"{source}: unknown metadata fields {unknown}")
        for key in ("input_size", "mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        if data.get("task") not in TASKS:
            raise EdgecvError(f"{source}: metadata task {data.get('task')!r} is not one of {', '.join(TASKS)}")
        for part in ("decoder", "thresholds"):
            if part not in data:
                raise EdgecvError(f"{source}: metadata {part} is missing")
            data[part] = parse_part(data["task"], part, data[part], source)
        try:
            return cls(**data)
        except TypeError as exc:
            raise EdgecvError(f"{source}: incomplete edgecv metadata ({exc})") from None
        except EdgecvError as exc:
            raise EdgecvError(f"{source}: {exc}") from None


def _upgrade(data: dict[str, Any], schema: int) -> dict[str, Any]:
    """Schema ``schema`` -> this one, a version at a time: what each version's readers assumed for an absent or
    free-form field, written out (per task: ``contract``'s ``from_v1``, ``from_v2``)."""
    if data.get("task") not in TASKS:
        return data  # refused as it is, by the task check
    contract, out = CONTRACTS.get(data["task"]), {**data, "schema": SCHEMA_VERSION}
    if schema == 1:
        out["decoder"], out["thresholds"] = contract.from_v1(dict(data.get("decoder") or {}), dict(data.get("thresholds") or {}))
    if isinstance(out.get("decoder"), dict) and isinstance(out.get("thresholds"), dict):  # (else refused as they are)
        out["decoder"], out["thresholds"] = contract.from_v2(out["decoder"], out["thresholds"])
    return out
