"""edgecv explain: SmoothGrad saliency and Grad-CAM PNGs; the hottest region lies on the object whose box the
generator knows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edgecv.cli import cli
from edgecv.data.samples import SHAPES, background_photos, draw_shape, random_background, random_color
from edgecv.models.loading import load_classifier
from edgecv.tools.explain import explain_image, last_spatial_layer


def _shape_on_photo(path, kind, size, rng, photos):
    img = random_background(photos, size, rng)
    r = rng.uniform(0.22, 0.3) * size
    cx, cy = rng.uniform(r + 2, size - r - 2, size=2)
    box = draw_shape(img, kind, cx, cy, r, rng.uniform(0, 2 * np.pi), random_color(rng, img))
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return box


def test_hottest_region_lies_on_the_object(tiny_run, tmp_path):
    model, meta = load_classifier(tiny_run / "best.pt")
    rng, photos = np.random.default_rng(3), background_photos()
    hits = 0
    for i, kind in enumerate(SHAPES):
        box = _shape_on_photo(tmp_path / f"{kind}.png", kind, 96, rng, photos)
        e = explain_image(model, meta, tmp_path / f"{kind}.png", target=kind)
        assert e.saliency.shape == e.gradcam.shape == (96, 96)
        assert e.label == kind and 0 <= e.score <= 1
        x, y = e.hottest("saliency")
        hits += box[0] <= x < box[2] and box[1] <= y < box[3]
    # objects cover ~15-25% of each image: chance would put the peak on them about 1 time in 5. (Grad-CAM is not
    # scored here: at this run's 64 px input the last feature map is 2 x 2.)
    assert hits >= 5, hits


def test_plain_gradient_is_one_sample_without_noise(tiny_run, tmp_path):
    model, meta = load_classifier(tiny_run / "best.pt")
    _shape_on_photo(tmp_path / "a.png", "star", 64, np.random.default_rng(0), background_photos())
    a = explain_image(model, meta, tmp_path / "a.png", target=0, samples=1, noise=0.0)
    b = explain_image(model, meta, tmp_path / "a.png", target=0, samples=1, noise=0.0)
    np.testing.assert_array_equal(a.saliency, b.saliency)
    assert a.saliency.max() == pytest.approx(1.0) and a.saliency.min() == 0.0


def test_gradcam_layer_is_the_last_feature_map(tiny_run, tmp_path):
    model, meta = load_classifier(tiny_run / "best.pt")
    name = last_spatial_layer(model, meta.input_size)
    assert name.startswith("backbone.") and dict(model.named_modules())[name] is not model.head
    _shape_on_photo(tmp_path / "a.png", "cross", 64, np.random.default_rng(4), background_photos())
    e = explain_image(model, meta, tmp_path / "a.png", samples=2)
    assert e.layer == name and e.gradcam.max() == pytest.approx(1.0) and e.gradcam.min() == 0.0


def test_cli_writes_both_pngs_named_after_the_image_path(tiny_run, tmp_path):
    images = [tmp_path / "a" / "img.jpg", tmp_path / "b" / "img.jpg", tmp_path / "other" / "a" / "img.jpg"]
    for k, path in enumerate(images):  # three images, one file name; two of them also in folders of one name
        path.parent.mkdir(parents=True)
        _shape_on_photo(path, "circle", 80, np.random.default_rng(k), background_photos())

    def explain(image):
        r = CliRunner().invoke(cli, ["explain", str(tiny_run), str(image), "--samples", "2", "--out", str(tmp_path / "out")])
        assert r.exit_code == 0, r.output
        return sorted(p.name for p in (tmp_path / "out").glob("*.png"))

    assert explain(images[0]) == ["a_img_gradcam.png", "a_img_saliency.png"]
    png = cv2.imread(str(tmp_path / "out" / "a_img_saliency.png"))
    assert png.shape == (80, 160, 3)  # image | map, side by side
    assert len(explain(images[1])) == 4  # b/img.jpg does not replace a/img.jpg's maps
    third = explain(images[2])  # another a/img.jpg: its own name too
    assert len(third) == 6 and any(n.startswith("a_img-") for n in third)
    assert explain(images[0]) == third  # the same image again replaces only its own maps
    assert (cv2.imread(str(tmp_path / "out" / "a_img_saliency.png")) == png).all()


def test_unknown_target_is_a_clear_error(tiny_run, tmp_path):
    _shape_on_photo(tmp_path / "img.png", "ring", 64, np.random.default_rng(2), background_photos())
    r = CliRunner().invoke(cli, ["explain", str(tiny_run), str(tmp_path / "img.png"), "--target", "hexagon"])
    assert r.exit_code != 0 and "unknown class 'hexagon'" in r.output


def test_a_video_or_a_broken_file_is_one_error_line(tiny_run, shapes_video, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    for path in (shapes_video, tmp_path / "broken.jpg"):
        r = CliRunner().invoke(cli, ["explain", str(tiny_run), str(path)])
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
        assert "explain takes one still image" in r.output
