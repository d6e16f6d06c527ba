"""The one Registry every lookup by name goes through."""

import pytest

from edgecv.errors import EdgecvError
from edgecv.registry import Registry


def test_a_registry_adds_finds_and_refuses_twice():
    reg: Registry[int] = Registry("widget")

    @reg.register("b", wrap=lambda f: f())
    def make_b():
        return 2

    assert make_b() == 2  # the decorated function is returned unchanged; the registry holds wrap(f)
    reg.add("a", 1)
    assert reg.names() == ["a", "b"] and reg.get("b") == 2 and "a" in reg and len(reg) == 2
    assert reg.find("c") is None
    with pytest.raises(EdgecvError, match="widget 'a' is registered twice"):
        reg.add("a", 3)
    assert reg.get("a") == 1
    with pytest.raises(EdgecvError, match=r"^unknown widget 'c' \(known: a, b\)$"):
        reg.get("c")


def test_every_registry_of_the_package_is_one_and_full():
    import edgecv.export.run  # noqa: F401  (registers the converters)
    from edgecv.export._registry import _CONVERTERS
    from edgecv.models._registry import _REGISTRY as backbones
    from edgecv.runtime.backends._base import _REGISTRY as backends
    from edgecv.runtime.postprocess._registry import _POSTPROCESS
    from edgecv.runtime.stages import _STAGES
    from edgecv.tasks._base import _TASKS

    for reg in (_CONVERTERS, backbones, backends, _POSTPROCESS, _STAGES, _TASKS):
        assert isinstance(reg, Registry) and len(reg) > 0
    assert _TASKS.names() == _POSTPROCESS.names() == _STAGES.names() == ["classify", "detect", "embed"]
    with pytest.raises(EdgecvError, match=r"the runtime has no pipeline stage for task 'pose' \(known: classify"):
        _STAGES.get("pose")
