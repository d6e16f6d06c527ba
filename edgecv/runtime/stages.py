"""Per-frame stages: one object per kind of work between a source and the sinks.

A stage turns a ``Frame`` into a typed result in three steps, each run by one of the pipeline's threads:
``prepare`` (capture thread: preprocessing, and a face cascade's detection and chips), ``infer`` (an inference
worker: the backend) and ``finish`` (postprocess thread: the typed result, and the stage's own events). What travels
between the steps is one typed ``FrameJob``. Stages are registered per artifact task (``create_stage``): the
pipeline never asks what task it runs.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecv.errors import EdgecvError
from edgecv.registry import Registry
from edgecv.runtime.backends import Backend
from edgecv.runtime.postprocess import get_postprocess, options_for
from edgecv.runtime.preprocess import Transform, prepare_frame
from edgecv.runtime.sources import Frame
from edgecv.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass
class FrameJob:
    """One frame on its way through a stage."""

    frame: Frame
    inputs: np.ndarray  # the backend's input batch (a face cascade: one row per face, possibly none)
    transform: Transform | None = None  # frame <-> model-input geometry (single-model stages)
    boxes: np.ndarray | None = None  # a face cascade: the faces' (n, 4) frame boxes, one per input row
    scores: np.ndarray | None = None  # a face cascade: the face detector's score of each box
    outputs: list[np.ndarray] = field(default_factory=list)
    seq: int = 0  # the frame's place in its stream (workers may infer frames out of order; they are finished in it)


@dataclass(frozen=True)
class StageOptions:
    """What the user asked for, by option name (None: not given); each stage takes the names that apply to it and
    refuses the others (``FLAGS`` spells them as the CLI does)."""

    values: dict[str, Any]
    model: str = ""
    event_cooldown_s: float = 5.0  # face events: one per person per this many seconds of stream time
    still_images: bool = False  # the source is a folder or glob of unrelated images (nothing to track)

    def given(self, names: tuple[str, ...]) -> dict[str, Any]:
        return {k: self.values.get(k) for k in names}


FLAGS = {
    "topk": "--topk",
    "conf": "--conf",
    "iou": "--iou",
    "track": "--track/--no-track",
    "zones": "--zones",
    "gallery": "--gallery",
    "face_detector": "--face-detector",
    "match_threshold": "--match-threshold",
}


class Stage(ABC):
    """The three steps (see the module docstring); ``drift_confidence`` is what the drift monitor observes.
    ``batchable``: a job's inputs are one row per frame and ``infer`` is the backend's call on them, so jobs of
    several streams may be inferred as one batch (``runtime/streams.py``)."""

    batchable = False

    @abstractmethod
    def prepare(self, frame: Frame, tel: Telemetry) -> FrameJob: ...

    @abstractmethod
    def infer(self, job: FrameJob) -> None: ...

    @abstractmethod
    def finish(self, job: FrameJob) -> tuple[Any, list[dict[str, Any]]]:
        """The typed result and the stage's own events for this frame."""

    def drift_confidence(self, job: FrameJob, result: Any) -> float | None:
        return None

    def describe(self) -> str | None:
        """A few words for the start line (None: nothing to add)."""
        return None

    def summary(self) -> dict[str, Any]:
        return {}


_STAGES: Registry[Callable[..., Stage]] = Registry("pipeline stage for task", "the runtime has no pipeline stage for task")


def register_stage(task: str):
    return _STAGES.register(task)


def create_stage(backend: Backend, options: StageOptions, stack: ExitStack) -> Stage:
    """The stage for the artifact's task; resources it opens (galleries, face detectors) join ``stack``."""
    return _STAGES.get(backend.meta.task)(backend, options, stack)


def stage_batchable(task: str) -> bool:
    """Whether the task's stage infers one input row per frame through the artifact's own backend."""
    return bool(getattr(_STAGES.find(task), "batchable", False))


def list_stages() -> list[str]:
    return _STAGES.names()


def _refuse_foreign(task: str, options: StageOptions, takes: tuple[str, ...]) -> None:
    foreign = [FLAGS.get(k, k) for k, v in options.values.items() if v is not None and k not in takes]
    if foreign:
        raise EdgecvError(
            f"{', '.join(sorted(foreign))} does not apply to {options.model or 'this artifact'} (a {task} artifact)"
        )


def detector_tracker(high: float):
    """The tracker ``edgecv run`` gives a detector: boxes from ``high`` (``--conf``, else the artifact's
    ``thresholds.track``: 0.6 for edgecv's own detectors, whose scores say how well the box fits, 0.25 for imported
    Ultralytics models, as their own trackers take them) are matched first, new tracks need 0.1 more, boxes down to
    0.1 keep tracks alive (a track is reported on every frame it is matched, so a doubtful box need not be an object
    on its own)."""
    from edgecv.runtime.track import ByteTracker, TrackerOptions

    return ByteTracker(TrackerOptions(high=high, birth=min(high + 0.1, 0.95), low=min(0.1, high)))


class SingleModelStage(Stage):
    """The whole frame in, one typed result out (classifiers; detectors extend it)."""

    TAKES: tuple[str, ...] = ("topk",)
    batchable = True

    def __init__(self, backend: Backend, options: StageOptions, stack: ExitStack):
        self.backend, self.meta = backend, backend.meta
        _refuse_foreign(self.meta.task, options, self.TAKES)
        self.post = get_postprocess(self.meta.task)
        self.options = options_for(self.meta.task, self._post_options(options.given(self.TAKES), options))
        drift = self.meta.drift or {}
        self._drift_conf = float(drift.get("confidence_filter", 0.25))  # the filter the reference was measured after

    def _post_options(self, given: dict[str, Any], options: StageOptions) -> dict[str, Any]:
        return given

    def prepare(self, frame: Frame, tel: Telemetry) -> FrameJob:
        with tel.timed("preprocess"):
            x, tf = prepare_frame(frame.bgr, self.meta, "BGR")
        return FrameJob(frame, x[None], tf)

    def infer(self, job: FrameJob) -> None:
        job.outputs = self.backend.infer(job.inputs)

    def finish(self, job: FrameJob) -> tuple[Any, list[dict[str, Any]]]:
        job.outputs = self.post.to_canonical(job.outputs, self.meta)  # once a frame: the drift monitor reads them too
        return self.post(job.outputs, self.meta, self.options, job.transform, canonical=True), []

    def drift_confidence(self, job: FrameJob, result: Any) -> float | None:
        return self.post.confidence(job.outputs, self._drift_conf)  # canonical since finish


register_stage("classify")(SingleModelStage)


@register_stage("detect")
class DetectStage(SingleModelStage):
    """Detectors, tracked (ByteTrack) on video and cameras unless ``track`` is False: the boxes reported are the
    confirmed tracks', each with its id; with ``zones``, zone and line events on the tracks."""

    TAKES = ("conf", "iou", "track", "zones")

    def _post_options(self, given: dict[str, Any], options: StageOptions) -> dict[str, Any]:
        track, zones = given.pop("track"), given.pop("zones")
        self.tracker = self.analytics = None
        if given.get("iou") is None:
            given["iou"] = self.meta.thresholds.iou
        if track if track is not None else not options.still_images:
            self.tracker = detector_tracker(self.meta.thresholds.track if given.get("conf") is None else given["conf"])
            given["conf"] = self.tracker.o.low  # low-score boxes are the tracker's to judge (the BYTE step)
        elif given.get("conf") is None:
            given["conf"] = self.meta.thresholds.conf
        if zones:
            from edgecv.runtime.analytics import Analytics, load_zones

            if self.tracker is None:
                raise EdgecvError(
                    "--zones counts tracked objects: it needs tracking on (drop --no-track; image folders are not tracked)"
                )
            self.analytics = Analytics(load_zones(zones))
        return given

    def describe(self) -> str | None:
        if self.tracker is None:
            return None
        o = self.tracker.o
        return f"tracking (ByteTrack: objects from score {o.high:g}, new tracks from {o.birth:g}, kept from {o.low:g})"

    def finish(self, job: FrameJob) -> tuple[Any, list[dict[str, Any]]]:
        result, events = super().finish(job)
        if self.tracker is None:
            return result, events
        tracked = self.tracker.update(result.xyxy, result.scores, result.class_ids, job.frame.bgr)
        result = result.subset(tracked.index, tracked.ids, tracked.class_ids, self.meta.labels)
        # ids put back on their objects: said, so that a consumer keeping state per id can swap it too
        pts = round(job.frame.pts, 2)
        events = events + [{"event": "track_exchange", "track_ids": [a, b], "stream_s": pts} for a, b in self.tracker.exchanged]
        if self.analytics is not None:
            h, w = job.frame.bgr.shape[:2]
            for a, b in self.tracker.exchanged:
                self.analytics.exchange(a, b)
            events += self.analytics.observe(result, job.frame.pts, (w, h))
        return result, events

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.tracker is not None:
            out["tracks"] = {"confirmed": self.tracker.born, "live": len(self.tracker)}
        if self.analytics is not None:
            out["zones"] = self.analytics.summary()
        return out


@register_stage("embed")
class FaceCascadeStage(Stage):
    """Face embedders: a face detector finds and chips every face (capture thread), the embedder embeds each chip
    (main thread), the matcher names them against the gallery, reloaded when an enrolment lands, and face events
    are emitted (postprocess thread)."""

    TAKES = ("gallery", "face_detector", "match_threshold", "track")

    def __init__(self, backend: Backend, options: StageOptions, stack: ExitStack):
        from edgecv.runtime.faces import DEFAULT_DETECTOR
        from edgecv.runtime.faces.enroll import FaceFrontend
        from edgecv.runtime.faces.events import FaceEvents
        from edgecv.runtime.faces.gallery import Gallery
        from edgecv.runtime.faces.match import LiveTemplates, embedder_stamp, stored_threshold

        _refuse_foreign("embed", options, self.TAKES)
        self.backend, self.meta = backend, backend.meta
        v = options.values
        stamp = embedder_stamp(self.meta, options.model)
        self.frontend = FaceFrontend(self.meta, v.get("face_detector") or DEFAULT_DETECTOR)
        if hasattr(self.frontend.detector, "close"):
            stack.callback(self.frontend.detector.close)
        self.events = FaceEvents(options.event_cooldown_s)
        self.gallery = self.live = None
        if v.get("gallery"):
            self.gallery = stack.enter_context(Gallery(v["gallery"]))
            self.gallery.check_embedder(stamp, options.model)
            self.live = LiveTemplates(self.gallery)
        # --match-threshold, else the gallery's own calibration (`edgecv gallery calibrate`), else the artifact's
        threshold, self.threshold_from = v.get("match_threshold"), "given"
        stored = stored_threshold(self.gallery) if threshold is None and self.gallery is not None else None
        if stored is not None:
            threshold, self.threshold_from = stored
        elif threshold is None and self.gallery is not None:
            remedy = "pass --match-threshold, or run `edgecv gallery calibrate` on this gallery"
            threshold, self.threshold_from = self.meta.thresholds.required("match", options.model, remedy), "the artifact's"
        elif threshold is None:  # no gallery: no face is named, whatever the threshold (an uncalibrated one: none)
            threshold, self.threshold_from = self.meta.thresholds.match, "the artifact's"
        self.threshold = float("inf") if threshold is None else float(threshold)
        post = get_postprocess("embed")
        self.post, self.options = post, post.options(threshold=self.threshold, gallery=self.live)
        self.dim = self.meta.decoder.dim
        self.tracker = self.identities = None
        track = v.get("track")
        if track if track is not None else not options.still_images:
            from edgecv.runtime.faces.tracks import TrackIdentities
            from edgecv.runtime.track import ByteTracker, TrackerOptions

            # a detected face is a face at once (no tentative frame); its name is what the track accumulates; a lost
            # face is kept 1 s at 30 fps (a face that leaves and one that comes where it was are often two people)
            faces = TrackerOptions(  # (low boxes on IoU over ByteTrack's 0.5: the objects' 0.4 was measured on shapes)
                high=0.5, birth=0.5, low=0.1, low_match_cost=0.5, tentative=False, lost_frames=30, appearance=None
            )
            self.tracker = ByteTracker(faces)  # (what a face looks like is its embedding: see TrackIdentities)
            # "probably another person" (1:1, calibrated at 10x the FAR); artifacts from before it: the verify threshold;
            # none calibrated (an import without --data): a track is never split by how its faces look
            t = self.meta.thresholds
            gate = next((g for g in (t.track_gate, t.verify) if g is not None), -1.0)
            self.identities = TrackIdentities(self.threshold, gate)

    def describe(self) -> str:
        tracked = "; faces tracked, named per track" if self.tracker is not None else ""
        if self.gallery is None:
            return "no --gallery: every face is reported as unknown" + tracked
        return (
            f"gallery {self.gallery.path}: {len(self.live.templates)} identities, match threshold "
            f"{self.threshold:.3f} ({self.threshold_from}){tracked}"
        )

    def prepare(self, frame: Frame, tel: Telemetry) -> FrameJob:
        with tel.timed("face_detect"):
            found = self.frontend.detect(frame.bgr)
        with tel.timed("preprocess"):
            xs, boxes = self.frontend.inputs(frame.bgr, found)
        return FrameJob(frame, xs, boxes=boxes, scores=np.asarray([f.score for f in found], np.float32))

    def infer(self, job: FrameJob) -> None:
        xs = job.inputs
        if not len(xs):
            job.outputs = [np.zeros((0, self.dim), np.float32)]
        else:
            job.outputs = [np.concatenate([self.backend.infer(xs[i : i + 1])[0] for i in range(len(xs))])]

    def finish(self, job: FrameJob) -> tuple[Any, list[dict[str, Any]]]:
        faces = self.post(job.outputs, self.meta, self.options, job.boxes)
        if self.tracker is not None:
            faces = self._per_track(faces, job.scores)
        return faces, self.events(faces, job.frame.index, job.frame.pts)

    def _per_track(self, faces, scores: np.ndarray):
        """The frame's faces on their tracks, each named from its track's mean embedding (faces/tracks.py)."""
        from edgecv.results import Faces

        index, ids, _ = self.tracker.update(faces.xyxy, scores, np.zeros(len(faces), np.int64))
        emb = faces.embeddings[index] if len(faces.embeddings) else np.zeros((len(index), self.dim), np.float32)
        if self.live is None or not len(index):
            return Faces(faces.xyxy[index], (None,) * len(index), np.full(len(index), -1.0, np.float32), (), emb, ids)
        face_ids, names, nearest, sims = self.identities.decide(ids, emb, self.live.get())
        return Faces(faces.xyxy[index], tuple(names), sims, tuple(nearest), emb, face_ids)

    def summary(self) -> dict[str, Any]:
        out = {
            "faces": {
                "gallery": str(self.gallery.path) if self.gallery else None,
                "identities": len(self.live.templates) if self.live else 0,
                "gallery_reloads": self.live.reloads if self.live else 0,
            }
        }
        if self.tracker is not None:
            out["tracks"] = {"confirmed": self.tracker.born, "live": len(self.tracker), "person_changes": self.identities.breaks}
        return out
