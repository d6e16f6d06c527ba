import pytest

from edgecv.errors import EdgecvError
from edgecv.export._registry import list_converters
from edgecv.export.run import export_run  # noqa: F401  (registers the converters)
from edgecv.export.spec import FORMATS, ExportSpec


def test_every_format_precision_has_a_registered_converter():
    for caps in FORMATS.values():
        assert set(caps.converters) == set(caps.precisions)
        assert set(caps.converters.values()) <= set(list_converters())


def test_targets_put_fp32_first_and_onnx_before_engines():
    spec = ExportSpec(formats=("engine", "tflite", "onnx"), int8=True, fp16=True)
    assert spec.targets() == [
        ("onnx", "fp32"),
        ("onnx", "int8"),
        ("tflite", "fp32"),
        ("tflite", "fp16"),
        ("tflite", "int8"),
        ("engine", "fp16"),
        ("engine", "int8"),
    ]
    assert spec.skipped() == [
        "onnx: no fp16 artifact (fp16 ONNX is not built: CPU runtimes run it slower than fp32; use tflite or engine)"
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"formats": ("onnx",), "fp16": True}, "none of onnx can hold fp16; onnx supports fp32, int8"),
        ({"formats": ("coreml",)}, "unknown format(s) ['coreml']"),
        ({"calib_method": "mse"}, "calibration method 'mse' is not one of minmax, percentile, entropy"),
        ({"max_drop": -1}, "--max-drop must be >= 0"),
    ],
)
def test_impossible_requests_are_refused_not_changed(kwargs, message):
    with pytest.raises(EdgecvError) as exc:
        ExportSpec(**kwargs)
    assert message in str(exc.value)
