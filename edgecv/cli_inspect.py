"""`edgecv inspect MODEL`: a run dir, an artifact (.onnx, .tflite, .engine) or a backbone name; registered on the
main group by ``edgecv.cli``. The counting lives in ``edgecv.tools.inspect``."""

from __future__ import annotations

import json

import click

from edgecv._deps import require
from edgecv.errors import EdgecvError


@click.command("inspect")
@click.argument("model")
@click.option("--input-size", type=click.IntRange(min=16), help="Square input size (default: the run's, or 224).")
@click.option(
    "--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Batch for the training-memory estimate."
)
@click.option("--layers", is_flag=True, help="Also print every layer.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect_cmd(model, input_size, batch, layers, as_json) -> None:
    """Parameters, MACs (depthwise vs pointwise) and memory of MODEL: a run dir, an artifact (.onnx, .tflite, .engine:
    also its embedded metadata and fidelity row) or a backbone name."""
    from pathlib import Path

    from edgecv.tools.inspect import artifact_meta, format_meta, format_report, inspect_onnx, inspect_tflite, inspect_torch

    path, meta = Path(model), None
    if path.suffix in (".onnx", ".tflite", ".engine") or path.is_file():
        if not path.is_file():
            raise EdgecvError(f"{model}: no such file")
        if path.suffix not in (".onnx", ".tflite", ".engine"):
            raise EdgecvError(f"{model}: not a model edgecv inspects (.onnx, .tflite, .engine, a run dir or a backbone)")
        meta = artifact_meta(path)
        if path.suffix == ".onnx":
            require("onnx", "export", "inspecting ONNX files")
            report = inspect_onnx(path)
        else:
            report = inspect_tflite(path) if path.suffix == ".tflite" else None  # an engine's graph is TensorRT's
    else:
        require("torch", "train", "inspecting torch models")
        if path.is_dir():
            from edgecv.tasks import task_of_run

            net, _, meta = task_of_run(path).load(path)
            size = input_size or meta.input_size[0]
        else:
            from edgecv.models import get_spec, list_backbones

            if model not in list_backbones():
                raise EdgecvError(
                    f"{model}: no such file or run directory, nor a backbone name (known: {', '.join(list_backbones())})"
                )
            spec = get_spec(model)
            net, size = spec.build(), input_size or spec.input_size
        report = inspect_torch(net, (1, 3, size, size), source=str(model))
    if as_json:
        click.echo(
            json.dumps(
                {
                    **(report.to_dict(batch) if report else {"source": str(path)}),
                    **({"artifact": json.loads(meta.to_json())} if meta is not None else {}),
                },
                indent=1,
            )
        )
        return
    if report is None:
        click.echo(f"{path}\nMACs: not counted for TensorRT engines (inspect the ONNX the engine was built from)")
    else:
        click.echo(format_report(report, batch, layers))
    if meta is not None and path.is_file():
        click.echo(format_meta(meta))
