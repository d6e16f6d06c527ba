"""``task: embed``: a face embedder (TAR@FAR on pairs of test identities never trained on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecv.tasks._base import Task, register_task


@register_task
class Embed(Task):
    name = "embed"
    calibrates_on_val = True
    frame_drift = False  # an embedder sees face chips; the drift monitor compares whole frames
    import_preset = "arcface"
    import_needs_labels = False
    import_needs_data = "an embedder's match threshold must be calibrated: pass --data DIR (a folder per person)"

    def train(self, recipe, run_dir, info, last, callbacks=()):
        from edgecv.train.embed import train_embedder

        return train_embedder(recipe, run_dir, info, last, callbacks)

    def load(self, run_dir: Path):
        from edgecv.models.loading import embedder_meta, load_embedder

        model, ck = load_embedder(run_dir / "best.pt")
        return model, ck, embedder_meta(model, ck)

    def evaluate(self, run_dir, split="test", data=None, tta=False):
        from edgecv.evaluate.embed_run import evaluate_embedder

        return evaluate_embedder(run_dir, split=split, write=False, data=data)

    def summary(self, result: dict[str, Any], split: str, tta: bool = False) -> str:
        t, thr = result[split], result.get("threshold") or {}
        line = (
            f"{split} ({t['identities']} unseen identities, {t['genuine_pairs']}/{t['impostor_pairs']} genuine/impostor "
            f"pairs): TAR@FAR=1e-2 {t['tar@far=0.01']:.4f}  TAR@FAR=1e-3 {t['tar@far=0.001']:.4f}  AUC {t['auc']:.4f}  "
            f"1:K top-1 {t['identify_top1']:.4f}"
        )
        if "at_threshold" in t:
            a = t["at_threshold"]
            line += (
                f"\nmatch threshold {a['threshold']:.4f} (calibrated on val to FAR {thr.get('target_far', 0):g}), on "
                f"{split} vs {a['shots']}-shot templates: TAR {a['tar']:.4f}  FAR {a['far']:.4f}  "
                f"accuracy {a['accuracy']:.4f}"
            )
        return line

    def fidelity_metric(self):
        from edgecv.export.fidelity import TaskMetric, neighbour_agreement, own_threshold, tar_at_far
        from edgecv.export.stats import tar_scorer

        return TaskMetric(
            "tar@far=0.01", tar_at_far, scorer=tar_scorer, draws=500, agreement=neighbour_agreement, extra=own_threshold
        )

    def import_decoder(self, outputs, labels, path, layout, extra, digest):
        from edgecv.export.import_parts import embedding_decoder

        return embedding_decoder(outputs, path, digest)

    def probe_decoder(self):
        from edgecv.artifact import EmbedDecoder

        return EmbedDecoder("embedding", ("embedding",), 1, False, "cosine", "probe", "detector-crop")

    def import_thresholds(self, spec):
        from edgecv.artifact import EmbedThresholds

        none = dict.fromkeys(("match", "verify", "track_gate", "val_tar", "val_far"))
        return EmbedThresholds(target_far=spec.target_far, **none)  # --data calibrates them

    def import_data(self, spec, meta):
        from edgecv.export.import_parts import folder_data

        return folder_data(spec, meta, by_identity=True)
