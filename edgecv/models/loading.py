"""A finished run's model rebuilt from its checkpoint (read with ``weights_only=True``), and the artifact metadata
that describes it: what evaluation, export and the tools load, without the trainer's modules."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from edgecv.artifact import ArtifactMeta, DetectDecoder, DetectThresholds, EmbedDecoder, EmbedThresholds
from edgecv.errors import EdgecvError
from edgecv.models.backbone import create_backbone
from edgecv.models.classifier import Classifier
from edgecv.models.detector import Detector
from edgecv.models.embedder import Embedder
from edgecv.models.run_meta import ClassifierMeta, DetectorMeta, EmbedderMeta, RunMeta, read_run_meta


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise EdgecvError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, zip errors
        raise EdgecvError(f"{path}: not a readable edgecv checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise EdgecvError(f"{path}: not an edgecv checkpoint (no 'model' entry)")
    return ckpt


def run_meta(checkpoint: str | Path, ckpt: dict[str, Any], kind: type[RunMeta]) -> Any:
    """The checkpoint's typed meta, which must be of ``kind`` (a detector run given to load_classifier is refused)."""
    meta = read_run_meta(ckpt.get("meta"), checkpoint)
    if not isinstance(meta, kind):
        raise EdgecvError(f"{checkpoint}: a {meta.task} run, not a {kind.kind} run")
    return meta


def load_classifier(checkpoint: str | Path) -> tuple[Classifier, ClassifierMeta]:
    """Rebuild the classifier a checkpoint describes (no download: the weights are in the file)."""
    ckpt = load_checkpoint(checkpoint)
    meta = run_meta(checkpoint, ckpt, ClassifierMeta)
    model = Classifier(create_backbone(meta.backbone, pretrained="none"), len(meta.classes), meta.dropout)
    model.load_state_dict(ckpt["model"])
    return model.eval(), meta


def build_detector(meta: DetectorMeta, pretrained: str = "none", weights: str | None = None) -> Detector:
    backbone = create_backbone(meta.backbone, pretrained=pretrained, weights=weights)
    return Detector(backbone, len(meta.classes), meta.input_size, meta.strides, meta.channels, meta.head_convs)


def load_detector(checkpoint: str | Path) -> tuple[Detector, DetectorMeta]:
    ck = load_checkpoint(checkpoint)
    meta = run_meta(checkpoint, ck, DetectorMeta)
    model = build_detector(meta)
    model.load_state_dict(ck["model"])
    return model.eval(), meta


# Tracked runs of edgecv's detectors match boxes from this score first (ByteTrack's high threshold, new tracks from
# 0.1 more): the ByteTrack paper's and MMTracking's MOT17 setting. Their scores are trained to say how well the box
# fits (quality focal loss), and on benchmarks/tracking.py 0.6 against ByteTrack's demo's 0.5: ID switches 126 -> 90,
# IDF1 0.801 -> 0.812 (README). An imported model's scores are its own (``tasks/detect.py``).
TRACK_FROM = 0.6


def detector_meta(model: Detector, classes: list[str], mean, std) -> ArtifactMeta:
    return ArtifactMeta(
        task="detect",
        labels=list(classes),
        input_size=(model.input_size, model.input_size),
        mean=tuple(mean),
        std=tuple(std),
        resize="letterbox",
        decoder=DetectDecoder(
            type="ltrb-points", outputs=("boxes", "scores"), nms_in_graph=None, strides=tuple(int(s) for s in model.strides)
        ),
        thresholds=DetectThresholds(conf=0.25, iou=0.45, track=TRACK_FROM),
    )


def build_embedder(meta: EmbedderMeta, pretrained: str = "none", weights: str | None = None) -> Embedder:
    backbone = create_backbone(meta.backbone, pretrained=pretrained, weights=weights)
    return Embedder(backbone, meta.dim, meta.dropout, meta.head, meta.input_size)


def load_embedder(checkpoint: str | Path) -> tuple[Embedder, EmbedderMeta]:
    """The embedder of a checkpoint (which also holds the ArcFace class centres, under ``loss.``)."""
    ck = load_checkpoint(checkpoint)
    meta = run_meta(checkpoint, ck, EmbedderMeta)
    model = build_embedder(meta)
    model.load_state_dict({k[len("model.") :]: v for k, v in ck["model"].items() if k.startswith("model.")})
    return model.eval(), meta


def embedder_id(model: Embedder) -> str:
    """Hash of the trained weights: every artifact exported from them (fp32, int8, TFLite...) shares it, so a
    gallery is refused only by a different embedder."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def embedder_meta(model: Embedder, ck: EmbedderMeta, calibrating_to: float | None = None) -> ArtifactMeta:
    """The artifact metadata of a trained embedder, with the thresholds calibrated at the end of its run; or, while
    the run calibrates them (``calibrating_to``: the target FAR), with none yet."""
    size = ck.input_size
    if ck.threshold:
        thresholds = EmbedThresholds.calibrated(ck.threshold)
    elif calibrating_to is not None:
        thresholds = EmbedThresholds(calibrating_to, None, None, None, None, None)
    else:
        raise EdgecvError("the checkpoint holds no calibrated threshold (its run ended before calibrating on the val people)")
    return ArtifactMeta(
        task="embed",
        labels=[],
        input_size=(size, size),
        mean=ck.mean,
        std=ck.std,
        decoder=EmbedDecoder(
            type="embedding",
            outputs=("embedding",),
            dim=model.dim,
            normalized=True,
            similarity="cosine",
            embedder_id=embedder_id(model),
            chip="edgecv-chip",
        ),
        thresholds=thresholds,
    )
