"""The ``edgecv`` command. Each command only parses its options and calls one library function with
the same arguments; library imports happen inside commands so the device (no torch) can run the CLI."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from edgecv import __version__
from edgecv._deps import require
from edgecv.cli_faces import FACE_COMMANDS
from edgecv.cli_import import import_cmd
from edgecv.cli_inspect import inspect_cmd
from edgecv.cli_predict import predict_cmd
from edgecv.cli_run import run_cmd
from edgecv.errors import EdgecvError
from edgecv.runtime.faces import DEFAULT_DETECTOR

_INTERRUPTED = {  # what an interrupted command left, per command
    "export": "the previously published artifacts are unchanged",
    "run": "stopped at once (a second Ctrl-C, or one during start-up): outputs may be incomplete",
}


DATA_HELP = "The folder the run's split.json files are in now (default: where they were recorded, or there relative to the run)."


class _Group(click.Group):
    """Turn EdgecvError into one line on stderr and exit code 2: no traceback for a user's mistake."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgecvError as exc:
            click.echo(f"edgecv: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as exc:  # a command may say what it left (str(exc)); else the command's default
            left = str(exc) or _INTERRUPTED.get(ctx.invoked_subcommand, "nothing was left half-written")
            click.echo(f"edgecv: interrupted; {left}", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecv")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also show what the frameworks and converters print (train, export and import write it to RUN/logs/ by default).",
)
def cli(quiet: bool, verbose: bool) -> None:
    """Train, quantize and deploy vision models to the edge."""
    logging.basicConfig(level=logging.WARNING, format="edgecv: %(message)s")
    logging.getLogger("edgecv").setLevel(logging.WARNING if quiet else logging.INFO)


@cli.command("train")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--data", help="Dataset root (overrides data.root).")
@click.option("--epochs", type=click.IntRange(min=0), help="Epochs for every enabled stage (head and fine-tune).")
@click.option("--out", help="Run directory (default runs/<recipe name>).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe field, e.g. train.batch_size=16.")
def train_cmd(recipe, data, epochs, out, device, resume, overwrite, overrides) -> None:
    """Train the model a RECIPE (YAML) describes by transfer learning."""
    require("torch", "train", "edgecv train")
    from edgecv._quiet import third_party_log, verbose
    from edgecv.recipes import load_recipe
    from edgecv.train.run import train

    run_dir = Path(out) if out else Path("runs") / load_recipe(recipe, tuple(overrides)).name
    with third_party_log(run_dir / "logs" / "train.log", verbose()):
        result = train(
            recipe,
            data=data,
            epochs=epochs,
            out=out,
            device=device,
            resume=resume,
            overwrite=overwrite,
            overrides=tuple(overrides),
        )
    if result.metrics:
        from edgecv.tasks import get_task

        click.echo(f"run: {result.run_dir}")
        click.echo(get_task(result.task).summary(result.metrics, "test"))


@cli.command("eval")
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.option("--data", type=click.Path(file_okay=False), help=DATA_HELP)
@click.option("--split", default="test", show_default=True, help="Recorded split to evaluate (train, val, test).")
@click.option("--tta", is_flag=True, help="Test-time augmentation: flip + multi-crop, softmax averaged.")
@click.option("--json", "as_json", is_flag=True, help="Print the full metrics as JSON.")
def eval_cmd(run, data, split, tta, as_json) -> None:
    """Evaluate RUN's best checkpoint on its recorded split and extra test sets."""
    require("torch", "train", "edgecv eval")
    from edgecv.tasks import task_of_run

    task = task_of_run(run)
    if tta and not task.supports_tta:
        raise click.UsageError(f"--tta is not for {task.name} runs")
    result = task.evaluate(run, split=split, data=data, tta=tta)
    click.echo(json.dumps(result, indent=1, default=float) if as_json else task.summary(result, split, tta))


@cli.command("export")
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--format",
    "formats",
    help="Comma-separated: onnx, tflite, engine (TensorRT, on the target device). "
    "Default: the --device profile's, else onnx,tflite.",
)
@click.option("--int8", is_flag=True, help="Also build int8 artifacts, calibrated on the run's train split and gated.")
@click.option("--fp16", is_flag=True, help="Also build fp16 artifacts (tflite, engine).")
@click.option("--calib-images", type=click.IntRange(min=1), default=256, show_default=True)
@click.option(
    "--calib-method",
    type=click.Choice(["minmax", "percentile", "entropy"]),
    default="minmax",
    show_default=True,
    help="ONNX int8 calibration (TFLite int8 uses PT2E histogram observers).",
)
@click.option(
    "--max-drop",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Largest test-split metric drop (points) an int8/fp16 artifact may have against torch fp32, "
    "judged by the upper end of the drop's 95% interval.",
)
@click.option(
    "--int8-activations",
    type=click.Choice(["uint8", "int8"]),
    help="The int8 ONNX's activations: uint8 (onnxruntime's fast x86 kernels) or int8, symmetric (what TensorRT "
    "builds engines from). Default: the --device profile's, else uint8.",
)
@click.option("--threads", type=click.IntRange(min=1), help="Backend threads for the fidelity measurement.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default RUN/export).")
@click.option("--device", help="Device profile (see `edgecv devices`) or a profile .yaml: its formats and precisions.")
@click.option("--nms-in-graph", is_flag=True, help="Detectors: also write each ONNX with NonMaxSuppression appended.")
@click.option("--data", type=click.Path(file_okay=False), help=DATA_HELP)
def export_cmd(
    run, formats, int8, fp16, calib_images, calib_method, max_drop, int8_activations, threads, out, device, nms_in_graph, data
) -> None:
    """Export RUN's best checkpoint, measure every artifact on the test split, gate int8 accuracy."""
    require("torch", "train", "edgecv export")
    require("onnx", "export", "edgecv export")
    from edgecv.export.fidelity import fastest_per_format, format_fastest, format_table
    from edgecv.export.run import export_run
    from edgecv.export.spec import ONNX_ACTIVATIONS, ExportSpec

    if device:
        from edgecv.devices import load_device

        profile = load_device(device)
        formats = formats or ",".join(profile.export.formats)
        int8, fp16 = int8 or profile.export.int8, fp16 or profile.export.fp16
        int8_activations = int8_activations or profile.export.int8_activations
        click.echo(f"device {profile.name}: {formats}{' +int8' if int8 else ''}{' +fp16' if fp16 else ''}")
    formats = formats or "onnx,tflite"
    spec = ExportSpec(
        formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
        int8=int8,
        fp16=fp16,
        calib_images=calib_images,
        calib_method=calib_method,
        max_drop=max_drop,
        out=out,
        threads=threads,
        nms_in_graph=nms_in_graph,
        int8_activations=int8_activations or ONNX_ACTIVATIONS,
    )
    for line in spec.skipped():
        click.echo(f"note: {line}")
    from edgecv._quiet import third_party_log, verbose

    with third_party_log(Path(run) / "logs" / "export.log", verbose()) as logged:
        result = export_run(run, spec, data=data)
    click.echo(format_table(result.rows))
    click.echo(
        "drop: torch fp32 minus the artifact on the test split, with its 95% paired-bootstrap interval; the "
        f"gate passes an artifact whose upper end is <= --max-drop ({max_drop}). agree: the same prediction "
        "as fp32 on the test split; all: on every image of the run (no labels needed)."
    )
    for line in format_fastest(fastest_per_format(result.rows)):
        click.echo(line)
    click.echo(
        "time: "
        + ", ".join(f"{name} {sec:.1f} s" for name, sec in result.phases.items())
        + f" (total {sum(result.phases.values()):.0f} s)"
    )
    click.echo(f"report: {result.report}" + (f"  (the converters' own output: {logged})" if logged else ""))
    if result.failures:
        for line in result.failures:
            click.echo(f"edgecv: error: {line}", err=True)
        sys.exit(1)


@cli.command("engine")
@click.argument("model", type=click.Path(dir_okay=False, exists=True))
@click.option("--fp16", is_flag=True, help="fp16 engine from an fp32 ONNX (an int8 ONNX always gives an int8 engine).")
@click.option("--out", type=click.Path(dir_okay=False), help="Engine path (default: beside MODEL, .engine).")
def engine_cmd(model, fp16, out) -> None:
    """Build the TensorRT engine of an exported ONNX artifact on this device (Jetson / NVIDIA GPU), cached by
    ONNX hash + precision + TensorRT version + GPU."""
    from edgecv.export.onnx2trt import engine_from_onnx

    click.echo(f"wrote {engine_from_onnx(model, out=out, fp16=fp16)}")


@cli.command("bench")
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, exists=True),
    help="Run directory whose test split to use (default: PATH when it is a run).",
)
@click.option("--threads", type=click.IntRange(min=1), help="Backend threads (default: the --device profile's).")
@click.option("--device", help="Device profile: its thread count.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True, help="Passes over the test split.")
@click.option("--out", type=click.Path(file_okay=False), help="Where bench.json / bench.md go (default: beside the artifacts).")
@click.option("--data", type=click.Path(file_okay=False), help=DATA_HELP)
def bench_cmd(path, run_dir, threads, device, repeat, out, data) -> None:
    """Every artifact of PATH (a run, an export folder or one model): size, metric, latency, FPS, speed-up, and
    MACs, GMAC/s and % of this machine's peak."""
    from pathlib import Path

    from edgecv.tools.bench import bench, find_artifacts, to_markdown, write_bench

    if device and not threads:
        from edgecv.devices import load_device

        threads = load_device(device).run_threads()
    rows = bench(path, run=run_dir, threads=threads, repeat=repeat, data=data)
    click.echo(to_markdown(rows))
    if any(r.get("peak_gmacs") for r in rows):
        from edgecv.tools.roofline import machine_peak

        peak = machine_peak(threads)
        click.echo(
            f"% of peak: of this machine's dense GEMM through onnxruntime at {threads or 'its default'} thread(s), "
            f"fp32 {peak['fp32']:.1f} GMAC/s, int8 {peak['int8']:.1f} (measured {peak['measured']}, cached in "
            f"{peak['cache']}); .tflite rows: MACs and GMAC/s only (no LiteRT peak is measured)"
        )
    folder = Path(out) if out else find_artifacts(Path(path))[0].parent
    js, md, kept = write_bench(rows, folder)
    click.echo(
        f"wrote {js} and {md}"
        + (f" ({len(rows)} row(s) added to {kept} kept from earlier benches of other artifacts or thread counts)" if kept else "")
    )


@cli.command("explain")
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.argument("image", type=click.Path(dir_okay=False, exists=True))
@click.option("--target", help="Class name or index to explain (default: the predicted class).")
@click.option("--layer", help="Grad-CAM layer (default: the last spatial feature map).")
@click.option(
    "--samples", type=click.IntRange(min=1), default=16, show_default=True, help="SmoothGrad noisy copies (1 = plain gradient)."
)
@click.option(
    "--noise", type=click.FloatRange(min=0), default=0.15, show_default=True, help="SmoothGrad noise, x the input range."
)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the PNGs (default RUN/explain).")
def explain_cmd(run, image, target, layer, samples, noise, out) -> None:
    """Gradient saliency (SmoothGrad) and Grad-CAM of RUN's classifier on IMAGE, written as PNGs."""
    require("torch", "train", "explaining a run")
    from edgecv.tools.explain import explain_run

    if target is not None and target.isdigit():
        target = int(target)
    e, (sal, cam) = explain_run(run, image, out=out, target=target, layer=layer, samples=samples, noise=noise)
    click.echo(
        f"{e.label} {e.score:.3f}  hottest saliency {e.hottest('saliency')}  grad-cam {e.hottest('gradcam')} (layer {e.layer})"
    )
    click.echo(f"wrote {sal} and {cam}")


@cli.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print every profile in full as JSON.")
def devices_cmd(as_json) -> None:
    """List the device profiles (devices/*.yaml) that --device accepts."""
    from edgecv.devices import list_devices, load_device

    if as_json:
        click.echo(json.dumps([load_device(n).model_dump(mode="json") for n in list_devices()], indent=1))
        return
    for name in list_devices():
        p = load_device(name)
        prec = "+".join(x for x, on in (("fp32", True), ("fp16", p.export.fp16), ("int8", p.export.int8)) if on)
        click.echo(
            f"{p.name:<18} {','.join(p.export.formats):<12} {prec:<15} {p.runtime.backend:<12} "
            f"camera {p.runtime.camera:<14} {p.description}"
        )


@cli.group("sample")
def sample_group() -> None:
    """Write the built-in sample datasets."""


@sample_group.command("classify")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--per-class", type=click.IntRange(min=3), default=60, show_default=True)
@click.option("--size", type=click.IntRange(min=32), default=192, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def sample_classify(out, per_class, size, seed) -> None:
    """Shapes on real photos, as an ImageFolder in OUT."""
    from edgecv.data.samples import SHAPES, write_classify_sample

    path = write_classify_sample(out, per_class=per_class, size=size, seed=seed)
    click.echo(f"wrote {per_class * len(SHAPES)} images in {len(SHAPES)} classes to {path}")


@sample_group.command("detect")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", type=click.IntRange(min=1), default=600, show_default=True)
@click.option("--size", type=click.IntRange(min=32), default=320, show_default=True)
@click.option("--layout", type=click.Choice(["coco", "yolo"]), default="coco", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def sample_detect(out, images, size, layout, seed) -> None:
    """Shapes on real photos with exact boxes: OUT/images + annotations.json (COCO) or labels/ (YOLO)."""
    from edgecv.data.samples import write_detect_sample

    click.echo(f"wrote {images} images ({layout}) to {write_detect_sample(out, images, size, seed, layout=layout)}")


@sample_group.command("faces")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--identities", type=click.IntRange(min=6), default=600, show_default=True)
@click.option("--per-identity", type=click.IntRange(min=2), default=6, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--face-detector", default=DEFAULT_DETECTOR, show_default=True, help="What cuts the chips (as for `edgecv run`).")
def sample_faces(out, identities, per_identity, seed, face_detector) -> None:
    """Generated people (face chips, one folder per identity) for an embedder recipe."""
    from edgecv.data.faces import write_faces_sample

    folder = write_faces_sample(out, identities, per_identity, seed, detector=face_detector)
    click.echo(f"wrote {identities} identities x {per_identity} face chips to {folder}")


@sample_group.command("face-demo")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=1000, show_default=True, help="Other people than `sample faces` draws.")
def sample_face_demo(out, seed) -> None:
    """OUT/enroll/<name>/*.jpg (photos to enrol) and OUT/video.avi showing them and strangers (OUT/truth.json)."""
    from edgecv.data.faces import write_face_demo

    demo = write_face_demo(out, seed=seed)
    click.echo(
        f"wrote {demo['enroll_photos']} enrolment photos of {', '.join(demo['enrolled'])} and "
        f"{demo['frames']} video frames ({demo['strangers']} strangers) to {out}"
    )


@sample_group.command("video")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--images", type=click.Path(file_okay=False, exists=True), required=True, help="Folder of images.")
@click.option("--frames", type=click.IntRange(min=1), default=120, show_default=True)
@click.option("--fps", type=click.FloatRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def sample_video(out, images, frames, fps, seed) -> None:
    """A video (OUT.avi / OUT.mp4) of images drawn at random from --images, for `edgecv run --source`."""
    from edgecv.data.samples import write_sample_video

    click.echo(f"wrote {frames} frames to {write_sample_video(out, images, frames=frames, fps=fps, seed=seed)}")


for _command in (*FACE_COMMANDS, run_cmd, predict_cmd, inspect_cmd, import_cmd):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="edgecv")


if __name__ == "__main__":
    main()
