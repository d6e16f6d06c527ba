"""Every task's model offers the trainers and export one interface (edgecv/models/_transfer.py)."""

import pytest

from edgecv.models import TransferModel, create_backbone
from edgecv.models.classifier import Classifier
from edgecv.models.detector import Detector
from edgecv.models.embedder import Embedder

BUILD = {
    "classify": lambda bb: Classifier(bb, 3),
    "detect": lambda bb: Detector(bb, 3, input_size=96),
    "embed": lambda bb: Embedder(bb, dim=16, input_size=64),
}


@pytest.mark.parametrize("task", sorted(BUILD))
def test_body_units_and_head_split_the_model(task):
    model = BUILD[task](create_backbone("mobilenetv3_small_100", pretrained="none"))
    assert isinstance(model, TransferModel)
    body = {id(p) for p in model.body.parameters()}
    head = {id(p) for p in model.head_parameters()}
    in_units = {id(p) for unit in model.units() for m in unit for p in m.parameters()}
    assert head and not head & body and body <= in_units  # the units are the body's groups, the head is the rest
    assert head | body == {id(p) for p in model.parameters()}  # nothing trains that is neither
    model.freeze_body()
    assert not any(p.requires_grad for p in model.body.parameters())
    assert all(p.requires_grad for p in model.head_parameters())
    assert all(hasattr(model, name) for name in model.float_modules)
    assert model.float_modules == (("decode",) if task == "detect" else ())


def test_a_model_that_leaves_out_part_of_the_interface_cannot_be_built():
    class Half(TransferModel):  # a new task's model that forgot what stage 1 trains
        def units(self):
            return []

    with pytest.raises(TypeError, match="head_parameters"):
        Half()
