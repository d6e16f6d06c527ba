"""`edgecv predict MODEL IMAGES...`: one line per image (or one JSON object per line with --json), annotated copies
with --save; registered on the main group by ``edgecv.cli``. Runs ``edgecv.load(MODEL).predict`` (no torch)."""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import sys
from pathlib import Path

import click

log = logging.getLogger("edgecv")


def expand_images(args: tuple[str, ...]) -> list[Path]:
    """Files as given, folders' images (sorted, not recursive), globs' matches; a name that matches nothing is an
    error (a typo must not look like an empty folder)."""
    from edgecv.errors import EdgecvError
    from edgecv.runtime.sources import IMAGE_SUFFIXES

    out: list[Path] = []
    for a in args:
        p = Path(a)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        elif any(c in a for c in "*?["):
            out += sorted(Path(q) for q in glob.glob(a, recursive=True) if Path(q).suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise EdgecvError(f"{a}: no such image, folder or glob")
    return out


@click.command("predict")
@click.argument("model", type=click.Path(dir_okay=False, exists=True))
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--save",
    type=click.Path(file_okay=False),
    help="Folder for annotated copies (named after each image's "
    "path, so images of one file name in different folders stay apart).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image (its path and the typed result).")
@click.option("--threads", type=click.IntRange(min=1), help="Backend threads.")
@click.option("--topk", type=click.IntRange(min=1), help="Classifiers: classes per image [default: 3].")
@click.option("--conf", type=click.FloatRange(0, 1), help="Detectors: lowest box score [default: the artifact's (0.25)].")
@click.option("--iou", type=click.FloatRange(0, 1), help="Detectors: NMS IoU [default: the artifact's (0.45)].")
@click.option("--gallery", type=click.Path(dir_okay=False, exists=True), help="Face embedders: the enrolment gallery.")
@click.option("--face-detector", help="Face embedders: as for `edgecv run` [default: blazeface-back].")
@click.option("--match-threshold", type=click.FloatRange(-1, 1), help="Face embedders: as for `edgecv run`.")
def predict_cmd(model, images, save, as_json, threads, topk, conf, iou, gallery, face_detector, match_threshold) -> None:
    """Predict on IMAGES (files, folders or globs) with MODEL (an exported .onnx / .tflite / .engine)."""
    import cv2

    from edgecv._outputs import OutputNames
    from edgecv.errors import EdgecvError
    from edgecv.runtime.api import load
    from edgecv.runtime.sinks import annotate

    paths = expand_images(images)
    if not paths:
        raise EdgecvError("no images in " + " ".join(images))
    options = {
        k: v
        for k, v in (
            ("topk", topk),
            ("conf", conf),
            ("iou", iou),
            ("gallery", gallery),
            ("face_detector", face_detector),
            ("match_threshold", match_threshold),
        )
        if v is not None
    }
    names = None
    if save:
        Path(save).mkdir(parents=True, exist_ok=True)
        names = OutputNames(save)
    unreadable = 0
    with load(model, threads=threads, **options) as m, contextlib.ExitStack() as stack:
        if names is not None:
            stack.callback(names.save)  # also when interrupted: the names written so far stay recorded
        for path in paths:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                unreadable += 1
                log.warning("%s: unreadable image, skipped", path)
                continue
            result = m.predict(bgr)
            saved = None
            if save:
                saved = Path(save) / f"{names.stem(path)}{path.suffix or '.jpg'}"
                if not cv2.imwrite(str(saved), annotate(bgr, result)):
                    raise EdgecvError(f"cannot write {saved}")
            if as_json:
                click.echo(json.dumps({"image": str(path), **result.to_dict(), **({"saved": str(saved)} if saved else {})}))
            else:
                click.echo(f"{path}: {result.describe()}")
    if unreadable == len(paths):
        raise EdgecvError(f"none of the {len(paths)} image(s) could be read")
    if unreadable:
        click.echo(f"edgecv: {unreadable} of {len(paths)} image(s) unreadable, skipped", err=True)
    sys.stdout.flush()
