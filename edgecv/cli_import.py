"""`edgecv import MODEL --task ...`: a model edgecv did not train as an edgecv artifact (``edgecv.export.import_model``);
registered on the main group by ``edgecv.cli``. Needs edgecv[import] (onnx, onnxruntime, LiteRT, pycocotools), not torch."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edgecv.tasks import get_task, list_tasks

LAYOUTS = sorted({layout for name in list_tasks() for layout in get_task(name).import_layouts})  # each task's own


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    h, _, w = text.lower().partition("x")
    try:
        return int(h), int(w or h)
    except ValueError:
        raise click.BadParameter(f"{text!r}: HxW or one number, e.g. 640 or 384x640", param_hint="--input-size") from None


def _triple(text: str | None, name: str) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        v = tuple(float(x) for x in text.split(","))
    except ValueError:
        v = ()
    if len(v) != 3:
        raise click.BadParameter(f"{text!r}: three comma-separated numbers (R,G,B, on pixels / 255)", param_hint=name)
    return v


@click.command("import")
@click.argument("model", type=click.Path(dir_okay=False, exists=True))
@click.option("--task", type=click.Choice(list_tasks()), required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder (model_<precision>.onnx ...).")
@click.option(
    "--labels",
    type=click.Path(dir_okay=False),
    help="Class names, one a line (default: the model's own metadata, as Ultralytics exports store them).",
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    help="Detectors: YOLOv8/11 [1, 4+nc, N] or the "
    "end-to-end YOLOv10/YOLO26 [1, K, 6] (default: from the model's metadata and output shape).",
)
@click.option("--input-size", help="HxW, for a model whose input size is dynamic.")
@click.option(
    "--preset",
    type=click.Choice(["imagenet", "yolo", "arcface", "raw"]),
    help="Preprocessing: imagenet (mean/std, stretch; classify default), yolo (pixels/255, letterbox; detect "
    "default), arcface ((x-127.5)/127.5; embed default), raw (0..255).",
)
@click.option("--mean", help="R,G,B mean on pixels/255 (overrides the preset's).")
@click.option("--std", help="R,G,B std on pixels/255 (overrides the preset's).")
@click.option("--color", type=click.Choice(["RGB", "BGR"]), help="Channel order the model takes (default RGB).")
@click.option("--resize", type=click.Choice(["stretch", "letterbox"]), help="Overrides the preset's resize.")
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="Your images: an ImageFolder (classify), a COCO/YOLO set "
    "(detect), a folder per person (embed): cut into calibration and test parts for the fidelity report.",
)
@click.option("--annotations", help="Detectors: the COCO JSON of --data (default DATA/annotations.json or YOLO labels/).")
@click.option("--int8", is_flag=True, help="Also an int8 ONNX, calibrated on --data and gated by --max-drop.")
@click.option(
    "--max-drop",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Largest metric drop (points, upper end of its 95% interval) int8 may have against the model.",
)
@click.option("--calib-images", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--calib-method", type=click.Choice(["minmax", "percentile", "entropy"]), default="minmax", show_default=True)
@click.option(
    "--target-far",
    type=click.FloatRange(min=0, min_open=True, max=1),
    default=1e-3,
    show_default=True,
    help="Embedders: the false accept rate the match threshold is calibrated to on the --data people.",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="Share of --data (of its people, for embedders) held out as the test part.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the calibration/test split.")
@click.option("--threads", type=click.IntRange(min=1), help="Backend threads for the fidelity measurement.")
def import_cmd(model, input_size, mean, std, **same) -> None:
    """Make MODEL (.onnx, .tflite) an edgecv artifact; with --data, measure it (and gate its int8) on your images.

    The options named as ``ImportSpec``'s fields pass through as they are (``same``)."""
    from edgecv._deps import require

    require("onnx", "import", "edgecv import")
    from edgecv._quiet import third_party_log, verbose
    from edgecv.export.fidelity import format_table
    from edgecv.export.import_model import ImportSpec, import_model

    spec = ImportSpec(input_size=_size(input_size), mean=_triple(mean, "--mean"), std=_triple(std, "--std"), **same)

    with third_party_log(Path(spec.out) / "logs" / "import.log", verbose()):
        result = import_model(model, spec)
    m = result.meta
    click.echo(
        f"{model}: {m.task}, {len(m.labels)} labels, input {m.input_size[0]}x{m.input_size[1]} {m.layout} "
        f"{m.color} {m.resize}, decoder {m.decoder.type}"
    )
    if result.rows:
        click.echo(format_table(result.rows))
        click.echo(
            "drop: the imported model minus the artifact on the test part of --data, with its 95% interval; "
            f"the gate passes an artifact whose upper end is <= --max-drop ({spec.max_drop})."
        )
    if getattr(m.thresholds, "match", None) is not None:
        click.echo(
            f"match threshold {m.thresholds.match:.4f} (FAR {m.thresholds.target_far:g} on the "
            "calibration people; each artifact stores its own)"
        )
    click.echo(f"wrote {', '.join(result.files)} and import_report.json to {result.out_dir}")
    if result.failures:
        for line in result.failures:
            click.echo(f"edgecv: error: {line}", err=True)
        sys.exit(1)
