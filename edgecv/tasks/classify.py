"""``task: classify``: an image classifier (top-1 on the test split)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecv.tasks._base import Task, register_task


@register_task
class Classify(Task):
    name = "classify"
    supports_tta = True

    def train(self, recipe, run_dir, info, last, callbacks=()):
        from edgecv.train.classify import train_classifier

        return train_classifier(recipe, run_dir, info, last, callbacks)

    def load(self, run_dir: Path):
        from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
        from edgecv.models.loading import load_classifier

        model, ck = load_classifier(run_dir / "best.pt")
        size = ck.input_size
        return (
            model,
            ck,
            ArtifactMeta(
                task="classify",
                labels=list(ck.classes),
                input_size=(size, size),
                mean=ck.mean,
                std=ck.std,
                decoder=ClassifyDecoder(type="logits", outputs=("output",)),
                thresholds=ClassifyThresholds(),
            ),
        )

    def evaluate(self, run_dir, split="test", data=None, tta=False):
        from edgecv.evaluate.run import evaluate_run

        qualifier = ("" if split == "test" else f"_{split}") + ("_tta" if tta else "")  # one file per split and mode
        return evaluate_run(run_dir, data=data, split=split, tta=tta, write=f"eval{qualifier}.json")

    def summary(self, result: dict[str, Any], split: str, tta: bool = False) -> str:
        m = result[split]
        lines = [f"{split}{' (tta)' if tta else ''} top-1: {m['top1']:.4f}  top-5: {m['top5']:.4f}  (n={m['n']})"]
        lines += [f"extra {name}: top-1 {e['top1']:.4f} (n={e['n']})" for name, e in result["extra"].items()]
        return "\n".join(lines)

    def fidelity_metric(self):
        from edgecv.export.fidelity import TaskMetric, top1
        from edgecv.export.stats import top1_scorer

        return TaskMetric("top1", top1, scorer=top1_scorer, draws=2000)

    def import_decoder(self, outputs, labels, path, layout, extra, digest):
        from edgecv.export.import_parts import classes_decoder

        return classes_decoder(outputs, labels, path)

    def probe_decoder(self):
        from edgecv.artifact import ClassifyDecoder

        return ClassifyDecoder(type="logits", outputs=("output",))

    def import_thresholds(self, spec):
        from edgecv.artifact import ClassifyThresholds

        return ClassifyThresholds()

    def import_data(self, spec, meta):
        from edgecv.export.import_parts import folder_data

        return folder_data(spec, meta, by_identity=False)
