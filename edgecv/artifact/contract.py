"""The typed, per-task parts of the artifact contract: how to read a model's outputs (``decoder``) and the
thresholds it was calibrated with (``thresholds``). Each task registers one decoder type and one thresholds
type; reading JSON checks every field by name: a missing one is an error naming it, never a default, an unknown
one is refused, and ``None`` only where a field allows it (an imported embedder without ``--data`` has no
calibrated threshold, and says so). Standard library only: both halves import it."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecv.errors import EdgecvError
from edgecv.registry import Registry


@dataclass(frozen=True)
class NmsInGraph:
    """NonMaxSuppression appended to a detector graph (``--nms-in-graph``): the thresholds baked into it."""

    iou: float
    conf: float
    max_per_class: int


@dataclass(frozen=True)
class ClassifyDecoder:
    type: str  # "logits" (edgecv's own) or "probabilities" (an imported graph that ends in a softmax)
    outputs: tuple[str, ...]

    def __post_init__(self) -> None:
        _one_of("decoder.type", self.type, ("logits", "probabilities"))


DETECT_TYPES = {  # decoder.type -> the fields that type needs
    "ltrb-points": ("strides",),  # edgecv's own: boxes (1, N, 4) xyxy in input pixels + sigmoid scores (1, N, C)
    "yolo": ("anchors", "transposed"),  # Ultralytics YOLOv8/11: [1, 4 + nc, N] (or [1, N, 4 + nc] transposed)
    "yolo-e2e": ("rows",),  # YOLOv10 / YOLO26 end-to-end: [1, K, 6] x1, y1, x2, y2, score, class
}


@dataclass(frozen=True)
class DetectDecoder:
    type: str
    outputs: tuple[str, ...]
    nms_in_graph: NmsInGraph | None
    strides: tuple[int, ...] | None = None
    anchors: int | None = None
    transposed: bool | None = None
    rows: int | None = None

    def __post_init__(self) -> None:
        _one_of("decoder.type", self.type, tuple(DETECT_TYPES))
        needs = DETECT_TYPES[self.type]
        for name in ("strides", "anchors", "transposed", "rows"):
            given = getattr(self, name) is not None
            if given != (name in needs):
                raise EdgecvError(
                    f"artifact metadata: decoder.{name} is {'missing' if not given else 'not a field'} "
                    f"for a {self.type!r} detector (it takes {', '.join(needs)})"
                )


@dataclass(frozen=True)
class EmbedDecoder:
    type: str  # "embedding"
    outputs: tuple[str, ...]
    dim: int
    normalized: bool  # the graph's output is L2-normalised already (the runtime normalises either way)
    similarity: str  # "cosine"
    embedder_id: str  # which weights made these vectors: a gallery refuses another embedder's
    # what the embedder was trained on: "edgecv-chip" (edgecv's own: `face_chip`, aligned on the face detector's
    # landmarks), "haar-crop" (edgecv's own before BlazeFace was the default) or "detector-crop" (imported)
    chip: str

    def __post_init__(self) -> None:
        _one_of("decoder.type", self.type, ("embedding",))
        _one_of("decoder.similarity", self.similarity, ("cosine",))
        _one_of("decoder.chip", self.chip, ("edgecv-chip", "haar-crop", "detector-crop"))
        if self.dim < 1:
            raise EdgecvError(f"artifact metadata: decoder.dim must be >= 1, got {self.dim}")


@dataclass(frozen=True)
class ClassifyThresholds:
    """A classifier reports its top-k classes with their probabilities: nothing to threshold."""


@dataclass(frozen=True)
class DetectThresholds:
    conf: float  # lowest box score `edgecv run` reports unless --conf says otherwise
    iou: float  # NMS IoU unless --iou says otherwise
    track: float  # tracked runs: boxes from this score are matched first and start tracks (+0.1), unless --conf


@dataclass(frozen=True)
class EmbedThresholds:
    target_far: float  # the false accept rate the thresholds were calibrated to
    match: float | None  # 1:N gallery search; None: never calibrated (imported without --data)
    verify: float | None  # 1:1 photo pairs at the same FAR
    track_gate: float | None  # "probably another person" within one face track (1:1 at 10x the FAR)
    val_tar: float | None  # what ``match`` gave on the val people
    val_far: float | None

    @classmethod
    def calibrated(cls, cal: dict[str, Any]) -> "EmbedThresholds":
        """From a calibration (``edgecv.evaluate.embed.calibrate_threshold``, or a fidelity row's ``threshold``):
        match, verify and target_far must be there; the track gate and the val TAR/FAR it measured may be None."""
        missing = [k for k in ("match", "verify", "target_far") if cal.get(k) is None]
        if missing:
            raise EdgecvError(f"embedder calibration lacks {', '.join(missing)}")
        return cls(
            target_far=float(cal["target_far"]),
            match=float(cal["match"]),
            verify=float(cal["verify"]),
            track_gate=_optional(cal.get("track_gate")),
            val_tar=_optional(cal.get("tar")),
            val_far=_optional(cal.get("far")),
        )

    def required(self, name: str, model: str, remedy: str) -> float:
        """The threshold ``name``, or one clear error saying it was never calibrated and what to do instead."""
        value = getattr(self, name)
        if value is None:
            raise EdgecvError(f"{model}: its thresholds.{name} was never calibrated (imported without --data); {remedy}")
        return float(value)


# Schema 1 -> 2, per task: (decoder, thresholds) JSON of schema 1 -> schema 2's, writing out what schema 1's
# readers assumed for an absent or free-form field, and nothing more.
Upgrade = Callable[[dict, dict], tuple[dict, dict]]


def _classify_from_v1(decoder: dict, thresholds: dict) -> tuple[dict, dict]:
    """No decoder: logits (schema 1 read anything but "probabilities" as logits)."""
    return {"type": decoder.get("type", "logits"), "outputs": decoder.get("outputs", ["output"])}, thresholds


def _detect_from_v1(decoder: dict, thresholds: dict) -> tuple[dict, dict]:
    """edgecv's own graphs had no type ("boxes"/"scores" described what "ltrb-points" says now); no
    ``nms_in_graph``: none."""
    decoder = {k: v for k, v in decoder.items() if k not in ("boxes", "scores")}
    return {"type": "ltrb-points", "nms_in_graph": None, **decoder}, thresholds


def _embed_from_v1(decoder: dict, thresholds: dict) -> tuple[dict, dict]:
    """An absent threshold: never calibrated (an import without --data), or from before the track gate."""
    names = [f.name for f in dataclasses.fields(EmbedThresholds)]
    return decoder, {name: thresholds.get(name) for name in names}


# Schema 2 -> 3: the same, for what schema 2's readers assumed of a field schema 3 added.
SCHEMA_2_TRACK = 0.6  # every detector's tracking threshold before artifacts carried their own


def _same(decoder: dict, thresholds: dict) -> tuple[dict, dict]:
    return decoder, thresholds


def _detect_from_v2(decoder: dict, thresholds: dict) -> tuple[dict, dict]:
    """No ``track``: schema 2's runtime tracked every detector from 0.6, imported or not."""
    return decoder, {"track": SCHEMA_2_TRACK, **thresholds}


@dataclass(frozen=True)
class TaskContract:
    decoder: type
    thresholds: type
    from_v1: Upgrade
    from_v2: Upgrade = _same


CONTRACTS: Registry[TaskContract] = Registry("artifact task", missing="artifact metadata: unknown task")
CONTRACTS.add("classify", TaskContract(ClassifyDecoder, ClassifyThresholds, _classify_from_v1))
CONTRACTS.add("detect", TaskContract(DetectDecoder, DetectThresholds, _detect_from_v1, _detect_from_v2))
CONTRACTS.add("embed", TaskContract(EmbedDecoder, EmbedThresholds, _embed_from_v1))


def _optional(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise EdgecvError(f"artifact metadata: {name} {value!r} is not one of {', '.join(allowed)}")


def check_part(task: str, part: str, value: Any) -> None:
    """``value`` is the ``task``'s typed ``part`` ("decoder" or "thresholds")."""
    want = getattr(CONTRACTS.get(task), part)
    if not isinstance(value, want):
        raise EdgecvError(f"artifact metadata: a {task} artifact's {part} is a {want.__name__}, got {type(value).__name__}")


def to_plain(value: Any) -> Any:
    """A typed part as JSON-ready data (tuples as lists, nested dataclasses as objects)."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def parse_part(task: str, part: str, data: Any, source: str) -> Any:
    """The ``task``'s typed ``part`` from its JSON object, every field checked by name."""
    return _parse(getattr(CONTRACTS.get(task), part), data, part, source)


def _parse(cls: type, data: Any, where: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise EdgecvError(f"{source}: metadata {where} must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise EdgecvError(f"{source}: metadata {where} has unknown fields {unknown}")
    values = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING:
                raise EdgecvError(f"{source}: metadata {where}.{name} is missing")
            continue  # a field its type does not take (a detector decoder's other layouts)
        values[name] = _value(hints[name], data[name], f"{where}.{name}", source)
    try:
        return cls(**values)
    except EdgecvError as exc:
        raise EdgecvError(f"{source}: {exc}") from None


def _value(hint: Any, value: Any, where: str, source: str) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if type(None) in typing.get_args(hint):  # Optional: None is a value ("not calibrated", "no NMS in graph")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        hint = args[0]
    if dataclasses.is_dataclass(hint):
        return _parse(hint, value, where, source)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise EdgecvError(f"{source}: metadata {where} must be a list, got {value!r}")
        return tuple(_value(typing.get_args(hint)[0], v, where, source) for v in value)
    ok = {
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not ok or (hint is float and math.isnan(value)):
        raise EdgecvError(f"{source}: metadata {where} must be a {hint.__name__}, got {value!r}")
    return hint(value)
