"""Recipes are data: a YAML file becomes a frozen, typed TrainRecipe or one error line naming file and field.

Validation happens once, here, at the edge. Everything downstream receives a frozen object and never
re-checks. ``resolve_recipe`` applies command-line overrides (``--set a.b=c``) through the same schema,
and ``dump_recipe`` writes the resolved recipe into the run directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgecv.errors import RecipeError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class SplitSpec(_Frozen):
    test: float = Field(0.15, gt=0, lt=1, description="fraction held out as the random test split")
    val: float = Field(0.15, ge=0, lt=1, description="fraction held out for early stopping")
    seed: int = 0

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> "SplitSpec":
        if self.test + self.val >= 0.9:
            raise ValueError(f"test + val = {self.test + self.val:.2f} leaves too little to train on (must be < 0.9)")
        return self


class DataSpec(_Frozen):
    root: str = Field(description="ImageFolder root: one subfolder per class")
    input_size: int = Field(224, ge=32, le=1024)
    split: SplitSpec = SplitSpec()
    extra_test: dict[str, str] = Field(default_factory=dict, description="name -> ImageFolder root, reported separately")


class _BackboneSpec(_Frozen):
    backbone: str = "efficientnet_lite0"
    pretrained: Literal["imagenet", "none"] = "imagenet"
    weights: str | None = Field(None, description="local state_dict file with ImageNet (or other) weights")


class ModelSpec(_BackboneSpec):
    dropout: float = Field(0.2, ge=0, lt=1)


class CropSpec(_Frozen):
    scale: tuple[float, float] = (0.6, 1.0)
    ratio: tuple[float, float] = (0.75, 1.3333)


class AugmentSpec(_Frozen):
    hflip: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    vflip: float = Field(0.0, ge=0, le=1)
    random_resized_crop: CropSpec | None = CropSpec()
    rotation: float = Field(10.0, ge=0, le=180, description="max degrees")
    shear: float = Field(5.0, ge=0, le=45, description="max degrees")
    color_jitter: float = Field(0.2, ge=0, le=1, description="brightness/contrast/saturation strength")
    pca_lighting: float = Field(0.1, ge=0, le=1, description="AlexNet-style PCA colour noise (FancyPCA alpha)")


class HeadStage(_Frozen):
    epochs: int = Field(30, ge=0, le=10_000)
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(1e-4, ge=0)
    cache_augmentations: int = Field(2, ge=0, le=64, description="augmented copies of each train image to cache")


class FinetuneStage(_Frozen):
    epochs: int = Field(0, ge=0, le=10_000, description="0 disables stage 2")
    unfreeze_blocks: int = Field(2, ge=1, description="top backbone blocks to unfreeze")
    lr: float = Field(1e-4, gt=0, le=10)
    weight_decay: float = Field(1e-4, ge=0)


class TrainSpec(_Frozen):
    batch_size: int = Field(32, ge=1, le=4096)
    workers: int = Field(2, ge=0, le=64)
    head: HeadStage = HeadStage()
    finetune: FinetuneStage = FinetuneStage()
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    early_stopping: int = Field(8, ge=0, description="patience in epochs on val top-1; 0 disables")
    seed: int = 0


class _Recipe(_Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class TrainRecipe(_Recipe):
    task: Literal["classify"] = "classify"
    data: DataSpec
    model: ModelSpec = ModelSpec()
    augment: AugmentSpec = AugmentSpec()
    train: TrainSpec = TrainSpec()


class DetectDataSpec(_Frozen):
    root: str = Field(description="dataset root: annotations.json (COCO) + images, or images/ + labels/ (YOLO)")
    annotations: str | None = Field(None, description="a COCO JSON (relative to root) instead of root/annotations.json")
    input_size: int = Field(320, ge=64, le=1280, description="square letterboxed input; a multiple of 32")
    split: SplitSpec = SplitSpec()

    @field_validator("input_size")
    @classmethod
    def _multiple_of_32(cls, v: int) -> int:
        if v % 32:
            raise ValueError("must be a multiple of 32 (the coarsest stride)")
        return v


class DetectModelSpec(_BackboneSpec):
    strides: tuple[int, ...] = (8, 16, 32)
    channels: int = Field(64, ge=8, le=512, description="neck and head width")
    head_convs: int = Field(2, ge=1, le=8)

    @field_validator("strides")
    @classmethod
    def _increasing(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(b <= a for a, b in zip(v, v[1:])) or any(s not in (4, 8, 16, 32, 64) for s in v):
            raise ValueError("must be increasing backbone strides from 4, 8, 16, 32, 64")
        return v


class DetectAugmentSpec(_Frozen):
    hflip: float = Field(0.5, ge=0, le=1)
    scale: tuple[float, float] = (0.75, 1.25)
    translate: float = Field(0.1, ge=0, le=0.5, description="max shift, fraction of the input size")
    color_jitter: float = Field(0.2, ge=0, le=1)


class DetectTrainSpec(_Frozen):
    batch_size: int = Field(16, ge=1, le=1024)
    workers: int = Field(2, ge=0, le=64)
    head: HeadStage = HeadStage(epochs=40, lr=2e-3, cache_augmentations=4)
    finetune: FinetuneStage = FinetuneStage()
    box_weight: float = Field(2.0, gt=0, description="GIoU loss weight against the focal class loss")
    center_radius: float = Field(1.5, gt=0, description="positives lie within this many strides of a box centre")
    early_stopping: int = Field(10, ge=0, description="patience in epochs on val mAP50; 0 disables")
    seed: int = 0


class DetectRecipe(_Recipe):
    task: Literal["detect"]
    data: DetectDataSpec
    model: DetectModelSpec = DetectModelSpec()
    augment: DetectAugmentSpec = DetectAugmentSpec()
    train: DetectTrainSpec = DetectTrainSpec()


class EmbedDataSpec(_Frozen):
    root: str = Field(description="one subfolder per identity, each with that person's face crops")
    input_size: int = Field(112, ge=32, le=512)
    min_images: int = Field(2, ge=1, description="identities with fewer readable images are left out (and counted)")
    split: SplitSpec = SplitSpec()


class EmbedModelSpec(_BackboneSpec):
    head: Literal["gdc", "pool"] = Field(
        "gdc",
        description="gdc: depthwise conv over the last feature map "
        "(keeps the face's layout); pool: global average pooled features",
    )
    dim: int = Field(128, ge=8, le=2048, description="embedding size")
    dropout: float = Field(0.2, ge=0, lt=1)


class EmbedTrainSpec(_Frozen):
    batch_size: int = Field(64, ge=2, le=4096)
    workers: int = Field(2, ge=0, le=64)
    head: HeadStage = HeadStage(epochs=40, lr=2e-3, cache_augmentations=4)
    finetune: FinetuneStage = FinetuneStage()
    loss: Literal["arcface", "triplet", "arcface+triplet"] = "triplet"
    arcface_margin: float = Field(28.6, ge=0, le=90, description="additive angular margin, degrees (28.6 = 0.5 rad)")
    arcface_scale: float = Field(30.0, gt=0, le=128)
    triplet_margin: float = Field(0.2, ge=0, le=2, description="batch-hard triplet margin (cosine distance)")
    target_far: float = Field(1e-3, gt=0, lt=1, description="FAR the match threshold is calibrated to on val pairs")
    early_stopping: int = Field(10, ge=0, description="patience in epochs on val TAR@FAR; 0 disables")
    seed: int = 0


class EmbedRecipe(_Recipe):
    task: Literal["embed"]
    data: EmbedDataSpec
    model: EmbedModelSpec = EmbedModelSpec()
    augment: AugmentSpec = AugmentSpec(
        hflip=0.5, rotation=8.0, shear=3.0, random_resized_crop=CropSpec(scale=(0.8, 1.0), ratio=(0.9, 1.1))
    )
    train: EmbedTrainSpec = EmbedTrainSpec()


def _format_error(source: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        msg = "unknown key"
    elif kind == "missing":
        msg = "required field is missing"
    else:
        msg = first["msg"]
        if "input" in first and kind not in ("model_type",):
            msg += f" (got {first['input']!r})"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{source}: {field}: {msg}{more}"


_YAML11_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _coerce_yaml_numbers(data: Any) -> Any:
    """PyYAML reads ``1e-3`` as a string (YAML 1.1 floats need a dot); accept it as the float it means."""
    if isinstance(data, dict):
        return {k: _coerce_yaml_numbers(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_coerce_yaml_numbers(v) for v in data]
    if isinstance(data, str) and _YAML11_FLOAT.match(data.strip()):
        return float(data)
    return data


def _validate(data: Any, source: str) -> TrainRecipe | DetectRecipe | EmbedRecipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    schema = {"classify": TrainRecipe, "detect": DetectRecipe, "embed": EmbedRecipe}.get(data.get("task", "classify"))
    if schema is None:
        raise RecipeError(f"{source}: task: must be classify, detect or embed (got {data.get('task')!r})")
    try:
        # strict=False only where YAML's number types are ambiguous: ints where floats are meant, lists for tuples.
        return schema.model_validate(_coerce_yaml_numbers(data), strict=False)
    except ValidationError as exc:
        raise RecipeError(_format_error(source, exc)) from None


def load_validated(path: str | Path, schema: type[BaseModel], top: str = "a mapping") -> Any:
    """A YAML file validated into ``schema`` (a pydantic model), or one RecipeError naming the file and field."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: expected {top} at the top level")
    try:
        return schema.model_validate(data, strict=False)
    except ValidationError as exc:
        raise RecipeError(_format_error(str(path), exc)) from None


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.head.epochs=3`` -> (["train", "head", "epochs"], 3); the value is parsed as YAML."""
    if "=" not in text:
        raise RecipeError(f"--set {text}: expected KEY=VALUE, e.g. train.head.epochs=3")
    key, value = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value)


def apply_overrides(data: dict[str, Any], overrides: list[tuple[list[str], Any]]) -> dict[str, Any]:
    out = yaml.safe_load(yaml.safe_dump(data))  # deep copy of plain data
    for keys, value in overrides:
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise RecipeError(f"--set {'.'.join(keys)}: {k} is not a section")
        node[keys[-1]] = value
    return out


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainRecipe:
    """Read and validate a recipe; ``overrides`` are ``a.b=c`` strings checked by the same schema."""
    data = load_yaml(path)
    if overrides:
        if not isinstance(data, dict):
            raise RecipeError(f"{path}: expected a mapping at the top level")
        data = apply_overrides(data, [parse_override(o) for o in overrides])
    return _validate(data, str(path))


def recipe_from_dict(data: dict[str, Any], source: str = "<recipe>") -> TrainRecipe:
    return _validate(data, source)


def dump_recipe(recipe: TrainRecipe, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
