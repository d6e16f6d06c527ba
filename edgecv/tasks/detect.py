"""``task: detect``: an object detector (COCO mAP on the test split, through the runtime's NMS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecv.tasks._base import Task, register_task


@register_task
class Detect(Task):
    name = "detect"
    graph_nms = True
    import_preset = "yolo"
    import_layouts = ("yolo", "yolo-e2e")  # edgecv.runtime.postprocess.detect.LAYOUTS

    def train(self, recipe, run_dir, info, last, callbacks=()):
        from edgecv.train.detect import train_detector

        return train_detector(recipe, run_dir, info, last, callbacks)

    def load(self, run_dir: Path):
        from edgecv.models.loading import detector_meta, load_detector

        model, ck = load_detector(run_dir / "best.pt")
        return model, ck, detector_meta(model, list(ck.classes), ck.mean, ck.std)

    def evaluate(self, run_dir, split="test", data=None, tta=False):
        from edgecv.evaluate.detect_run import evaluate_detector

        m = evaluate_detector(run_dir, split=split, write=False, data=data)
        m.pop("pr50")
        return m

    def summary(self, result: dict[str, Any], split: str, tta: bool = False) -> str:
        lines = [f"{split} mAP50: {result['map50']:.4f}  mAP50-95: {result['map50_95']:.4f}  (n={result['images']} images)"]
        lines += [f"  {name:<16} AP50 {ap['ap50']:.4f}  AP50-95 {ap['ap50_95']:.4f}" for name, ap in result["per_class"].items()]
        return "\n".join(lines)

    def eval_set(self, run_dir, split, name, input_size):
        from edgecv.export.fidelity import load_detect_eval_set

        return load_detect_eval_set(name, run_dir, split.root, split.files[name], split.labels[name], input_size)

    def fidelity_metric(self):
        from edgecv.export.fidelity import TaskMetric, map50
        from edgecv.export.stats import map50_scorer

        # 500 draws, each an accumulate of the per-image matches at IoU 0.5 only (about 8 ms at 300 images); output 1: the scores
        return TaskMetric("map50", map50, scorer=map50_scorer, draws=500, compared=1)

    def import_decoder(self, outputs, labels, path, layout, extra, digest):
        from edgecv.export.import_parts import yolo_decoder

        return yolo_decoder(outputs, labels, path, layout, extra)

    def probe_decoder(self):
        from edgecv.artifact import DetectDecoder

        return DetectDecoder(type="yolo-e2e", outputs=("output0",), nms_in_graph=None, rows=1)

    def import_thresholds(self, spec):
        from edgecv.artifact import DetectThresholds

        # Ultralytics' own defaults, for the scores of its models: predict's conf and NMS IoU, and its trackers'
        # first association and new tracks (track_high_thresh, new_track_thresh: 0.25; edgecv adds 0.1 for the latter)
        return DetectThresholds(conf=0.25, iou=0.45, track=0.25)

    def import_data(self, spec, meta):
        from edgecv.export.import_parts import detection_data

        return detection_data(spec, meta)
