"""`edgecv run MODEL --source ...`: the device runtime's command (``edgecv.runtime.pipeline``), registered on the main
group by ``edgecv.cli``. Needs edgecv[runtime] only."""

from __future__ import annotations

import json
import sys

import click


@click.command("run")
@click.argument("model", type=click.Path(dir_okay=False, exists=True))
@click.option("--camera", "camera", help="Camera index (V4L2), e.g. 0.")
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="URI: /dev/video0, csi://0, libcamera://0, rtsp://..., "
    "http://..., a video, a folder or a glob; NAME=URI names it. Repeat it for several streams through one "
    "model (each with its own tracking, drift and video; events tagged with the name).",
)
@click.option(
    "--sources",
    "sources_file",
    type=click.Path(dir_okay=False, exists=True),
    help="A file of sources, one URI (or NAME=URI) a line; # comments.",
)
@click.option("--backend", type=click.Choice(["onnxruntime", "litert", "tensorrt"]), help="Default: by file type.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Runtime threads of each inference call [default: 1 with one worker a core; a lone worker: cores - 1].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Frames inferred side by side, each on its own thread [default: cores / --threads on a CPU, 1 on a GPU].",
)
@click.option(
    "--conf",
    type=click.FloatRange(0, 1),
    help="Detectors: score threshold [default: the artifact's (0.25); tracked, the artifact's tracking score, from which "
    "boxes are matched first (0.6 for edgecv's detectors, 0.25 for imported YOLO)].",
)
@click.option("--iou", type=click.FloatRange(0, 1), help="Detectors: NMS IoU threshold [default: the artifact's (0.45)].")
@click.option(
    "--track/--no-track",
    default=None,
    help="Detectors: ByteTrack ids across frames [default: on for "
    "video and cameras, off for image folders]; only confirmed tracks are reported.",
)
@click.option(
    "--zones",
    type=click.Path(dir_okay=False, exists=True),
    help="Detectors: a YAML of zones and lines: zone_enter/zone_exit (dwell) and line_cross events, counts in the telemetry.",
)
@click.option("--topk", type=click.IntRange(min=1), help="Classifiers: classes per frame [default: 3].")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after N frames (of each source).")
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    help="Several sources: frames one inference call takes, one a "
    "stream [default: as many as streams on a GPU, 1 on a CPU, where batching does not pay].",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False),
    help="Annotated video: out.webm (VP8, plays in browsers), "
    "out.mp4 (H.264 where OpenCV has it, else MPEG-4) or out.avi (MJPEG); several sources: out-NAME.mp4 each.",
)
@click.option("--events", type=click.Path(dir_okay=False), help="JSON-lines events file.")
@click.option("--telemetry", type=click.Path(dir_okay=False), help="Telemetry JSON (default: beside --events).")
@click.option("--show", is_flag=True, help="Show the annotated frames in a window.")
@click.option("--capture-drift", type=click.Path(file_okay=False), help="Keep sampled frames while inputs drift.")
@click.option("--no-drift", is_flag=True, help="Do not run the drift monitor.")
@click.option(
    "--drift-checks",
    default="training,site",
    show_default=True,
    help="Drift checks: training (inputs unlike the training images) and/or site (unlike what this camera "
    "showed); drop site for a camera whose view keeps changing.",
)
@click.option("--stats-every", type=click.FloatRange(min=0), default=0, help="Print FPS every N seconds.")
@click.option(
    "--open-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Live sources: seconds to wait for the first frame before failing.",
)
@click.option(
    "--give-up-after",
    type=click.FloatRange(min=0.1),
    help="Live sources: stop after this many seconds without frames once streaming (default: reconnect forever).",
)
@click.option("--device", help="Device profile (see `edgecv devices`): threads, providers, XNNPACK, default camera.")
@click.option("--gallery", type=click.Path(dir_okay=False, exists=True), help="Face embedders: the enrolment gallery.")
@click.option(
    "--face-detector",
    help="Face embedders: haar, haar:FILE.xml, yunet:FILE.onnx, blazeface (short range, 128 px), blazeface-back "
    "(256 px, smaller faces), blazeface:FILE.tflite, or an edgecv detector artifact[#class] [default: blazeface-back].",
)
@click.option(
    "--match-threshold",
    type=click.FloatRange(-1, 1),
    help="Face embedders: cosine similarity to accept a match (default: the one calibrated at export, in the artifact).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the end-of-run summary as JSON.")
def run_cmd(
    model,
    camera,
    sources,
    sources_file,
    no_drift,
    drift_checks,
    stats_every,
    open_timeout,
    give_up_after,
    device,
    as_json,
    **same,  # options named as PipelineSpec's fields
) -> None:
    """Run MODEL (an exported .onnx / .tflite / .engine) on a camera, stream, video or images."""
    from edgecv.runtime.pipeline import PipelineSpec, apply_device, run_pipeline
    from edgecv.runtime.streams import read_sources
    from edgecv.runtime.telemetry import format_summary

    uris = ([camera] if camera is not None else []) + list(sources) + (read_sources(sources_file) if sources_file else [])
    if sources_file and not uris[len(sources) + (camera is not None) :]:
        raise click.UsageError(f"--sources {sources_file}: no sources in it (one URI a line)")
    if not uris and not device:
        raise click.UsageError(
            "give --camera INDEX, --source URI (repeatable) or --sources FILE (or a --device with a default camera)"
        )
    spec = PipelineSpec(
        model=model,
        source=uris[0] if len(uris) == 1 else (tuple(uris) or ""),
        drift=not no_drift,
        drift_checks=tuple(c.strip() for c in drift_checks.split(",") if c.strip()),
        stats_every_s=stats_every,
        open_timeout_s=open_timeout,
        give_up_after_s=give_up_after,
        **same,
    )
    if device:
        spec = apply_device(spec, device)
    summary = run_pipeline(spec)
    click.echo(json.dumps(summary, indent=1, default=float) if as_json else format_summary(summary))
    for name in summary.get("failed", ()):  # the other streams ran to their end; the run still did not do its job
        click.echo(f"edgecv: error: stream {name}: {summary['streams'][name]['error']}", err=True)
    if summary.get("failed"):
        sys.exit(1)
