import subprocess
import sys

import numpy as np
import pytest

from edgecv.runtime.preprocess import classify_input_chw, normalize_chw, normalize_hwc


def _plain(img_u8, mean, std):
    """The formula written the obvious way, in float32: what the fast paths must equal bit for bit."""
    scale = (1.0 / (255.0 * np.asarray(std, np.float32))).astype(np.float32)
    shift = (-np.asarray(mean, np.float32) / np.asarray(std, np.float32)).astype(np.float32)
    return img_u8.astype(np.float32) * scale + shift


@pytest.mark.parametrize("shape", [(224, 224, 3), (320, 240, 3), (7, 13, 3), (1, 1, 3)])
def test_fast_normalisation_gives_the_same_bits(shape):
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    want = _plain(img, mean, std)
    assert np.array_equal(normalize_hwc(img, mean, std), want)
    assert normalize_hwc(img[..., ::-1], mean, std).flags.c_contiguous
    assert np.array_equal(normalize_hwc(img[..., ::-1], mean, std), _plain(img[..., ::-1], mean, std))
    chw = normalize_chw(img, mean, std)
    assert chw.shape == (3, *shape[:2]) and chw.flags.c_contiguous
    assert np.array_equal(chw, want.transpose(2, 0, 1))
    assert np.array_equal(normalize_chw(img, mean, std, swap=True), _plain(img[..., ::-1], mean, std).transpose(2, 0, 1))


def test_normalize_exact_values():
    px = np.array([[[0, 255, 51]]], np.uint8)
    out = normalize_hwc(px, mean=(0.5, 0.5, 0.2), std=(0.5, 0.25, 0.2))
    np.testing.assert_allclose(out[0, 0], [-1.0, 2.0, 0.0], atol=1e-6)


def test_classify_input_layout():
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 255
    x = classify_input_chw(rgb, 16, (0, 0, 0), (1, 1, 1))
    assert x.shape == (3, 16, 16) and x.dtype == np.float32 and x.flags.c_contiguous
    assert (x[0] == 1).all() and (x[1:] == 0).all()


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision', 'timm', 'tensorflow'):
            raise ImportError(f'{name} is blocked: the device has no training framework')
sys.meta_path.insert(0, Block())
"""


def test_runtime_and_cli_import_without_torch():
    code = (
        BLOCK_TORCH
        + """
import edgecv.runtime.preprocess
import edgecv.cli, edgecv.recipes, edgecv.data.imagefolder
from click.testing import CliRunner
r = CliRunner().invoke(edgecv.cli.cli, ['train', 'nope.yaml'])
assert r.exit_code == 2 and "pip install 'edgecv[train]'" in r.output, r.output
print('ok')
"""
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_letterbox_transform_maps_boxes_both_ways():
    import numpy as np

    from edgecv.runtime.preprocess import letterbox, letterbox_transform

    img = np.zeros((240, 320, 3), np.uint8)
    img[60:120, 160:240] = 255  # a 80 x 60 white box at (160, 60)
    out, tf = letterbox(img, (160, 160))
    assert tf == letterbox_transform((240, 320), (160, 160)) and out.shape == (160, 160, 3)
    assert (tf.scale_x, tf.scale_y, tf.pad_x, tf.pad_y) == (0.5, 0.5, 0, 20)
    box = np.float32([[160, 60, 240, 120]])
    inside = tf.to_input(box)
    np.testing.assert_allclose(inside, [[80, 50, 120, 80]])
    ys, xs = np.nonzero(out[..., 0] > 127)
    np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], inside[0], atol=1)
    np.testing.assert_allclose(tf.to_frame(inside), box)
