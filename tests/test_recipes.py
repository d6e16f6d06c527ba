from pathlib import Path

import pytest

from edgecv.errors import RecipeError
from edgecv.recipes import DetectRecipe, EmbedRecipe, TrainRecipe, load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_shipped_recipes_validate(path):
    r = load_recipe(path)
    assert {TrainRecipe: "classify", DetectRecipe: "detect", EmbedRecipe: "embed"}[type(r)] == r.task
    assert r.name == path.stem or path.stem == "sample"


def test_unknown_key_names_file_and_field(tmp_path):
    p = write(tmp_path, "name: x\ndata: {root: d}\ntrain: {head: {epochz: 3}}\n")
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    assert str(e.value).startswith(f"{p}: train.head.epochz: unknown key")


def test_wrong_type_and_impossible_value(tmp_path):
    with pytest.raises(RecipeError, match=r"train\.batch_size: .*integer.*'many'"):
        load_recipe(write(tmp_path, "name: x\ndata: {root: d}\ntrain: {batch_size: many}\n"))
    with pytest.raises(RecipeError, match=r"data\.split\.test: .*less than 1"):
        load_recipe(write(tmp_path, "name: x\ndata: {root: d, split: {test: 1.5}}\n"))
    with pytest.raises(RecipeError, match=r"model\.pretrained: .*'imagenet' or 'none'"):
        load_recipe(write(tmp_path, "name: x\ndata: {root: d}\nmodel: {pretrained: yes please}\n"))
    with pytest.raises(RecipeError, match=r"data: required field is missing"):
        load_recipe(write(tmp_path, "name: x\n"))
    with pytest.raises(RecipeError, match="leaves too little to train on"):
        load_recipe(write(tmp_path, "name: x\ndata: {root: d, split: {test: 0.5, val: 0.45}}\n"))


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(RecipeError, match=r"r\.yaml: line \d not valid YAML"):
        load_recipe(write(tmp_path, "name: x\ndata: {root: [\n"))
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_yaml11_exponent_floats_and_overrides(tmp_path):
    p = write(tmp_path, "name: x\ndata: {root: d}\ntrain: {head: {lr: 1e-3}}\n")
    r = load_recipe(p, ["train.head.epochs=3", "augment.hflip=0"])
    assert r.train.head.lr == pytest.approx(1e-3)
    assert r.train.head.epochs == 3 and r.augment.hflip == 0
    with pytest.raises(RecipeError, match=r"train\.head\.epochs: .*greater than or equal to 0"):
        load_recipe(p, ["train.head.epochs=-1"])


def test_recipe_is_frozen(tmp_path):
    r = load_recipe(write(tmp_path, "name: x\ndata: {root: d}\n"))
    with pytest.raises(Exception):
        r.train.batch_size = 3


def test_detect_recipe_fields_are_checked(tmp_path):
    with pytest.raises(RecipeError, match=r"data\.input_size: .*multiple of 32"):
        load_recipe(write(tmp_path, "name: x\ntask: detect\ndata: {root: d, input_size: 300}\n"))
    with pytest.raises(RecipeError, match=r"task: must be classify, detect or embed"):
        load_recipe(write(tmp_path, "name: x\ntask: segment\ndata: {root: d}\n"))
    with pytest.raises(RecipeError, match=r"train\.center_radius: "):
        load_recipe(write(tmp_path, "name: x\ntask: detect\ndata: {root: d}\ntrain: {center_radius: 0}\n"))


def test_detect_strides_must_increase(tmp_path):
    with pytest.raises(RecipeError, match=r"model\.strides: .*increasing"):
        load_recipe(write(tmp_path, "name: x\ntask: detect\ndata: {root: d}\nmodel: {strides: [32, 16]}\n"))


def test_embed_recipe_is_validated_with_file_and_field(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("name: e\ntask: embed\ndata: {root: x}\ntrain: {loss: contrastive}\n")
    with pytest.raises(RecipeError, match=r"e\.yaml: train\.loss: .*contrastive"):
        load_recipe(p)
    p.write_text("name: e\ntask: embed\ndata: {root: x}\ntrain: {target_far: 2}\n")
    with pytest.raises(RecipeError, match=r"train\.target_far"):
        load_recipe(p)
    p.write_text("name: e\ntask: embed\ndata: {root: x}\n")
    r = load_recipe(p)
    assert isinstance(r, EmbedRecipe) and r.data.input_size == 112 and r.model.dim == 128 and r.train.loss == "triplet"
