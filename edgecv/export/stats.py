"""Error bars for the fidelity report: the paired accuracy drop of an artifact against torch fp32, with a 95%
interval from a bootstrap over the test images.

Paired: each draw resamples the test images (with replacement) once and scores the reference and the artifact on
the same draw, so what the two share (an image both get right, or both wrong) cancels and only their
disagreements move the drop. A test split of 300 images makes one image 0.33 points; the interval says how far
the drop on the images the device will see may be from the one measured here, and the gate decides on its upper
bound (a drop is certified only when the test split is large enough to show it).

Each task gives a scorer: outputs + eval set (``fidelity.EvalSet``) -> a function from image indices (one draw)
to the task's metric on those images. Pairs of an embedder are scored between distinct drawn images only (a
drawn image paired with its own copy would be a genuine pair of similarity 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

LEVEL = 0.95
Scorer = Callable[[np.ndarray], float]  # image indices (one bootstrap draw) -> metric on them


def top1_scorer(outputs: list[np.ndarray], es: Any) -> Scorer:
    correct = (outputs[0].argmax(1) == es.labels).astype(np.float64)
    return lambda idx: float(correct[idx].mean())


def tar_scorer(outputs: list[np.ndarray], es: Any, far: float = 1e-2) -> Scorer:
    from edgecv.evaluate.embed import l2_normalize, threshold_at_far

    emb = l2_normalize(outputs[0]).astype(np.float64)
    sims, labels = emb @ emb.T, np.asarray(es.labels)

    def score(idx: np.ndarray) -> float:
        i, j = np.triu_indices(len(idx), 1)
        a, b = idx[i], idx[j]
        distinct = a != b
        a, b = a[distinct], b[distinct]
        s, same = sims[a, b], labels[a] == labels[b]
        if not same.any() or same.all():
            return float("nan")
        return float(np.mean(s[same] >= threshold_at_far(s[~same], far)))

    return score


def map50_scorer(outputs: list, es: Any) -> Scorer:
    """The device's NMS runs once per image and pycocotools matches each image's detections to its boxes once
    (``COCOeval.evaluate``); a draw hands ``accumulate`` those per-image matches in the drawn order (an image drawn
    twice counts twice, as if it were two images) and reads mAP@0.5 as ``summarize`` does.

    Only the slice mAP@0.5 reads is accumulated: IoU 0.5, area "all", the most detections. Each (IoU, area, max
    detections) cell of ``accumulate`` is computed on its own, so this is the full call's value from 1 of its 120
    cells (10 IoUs x 4 areas x 3 max-dets): 500 paired draws of a 300-image test split took minutes an artifact."""
    import contextlib
    import copy
    import io

    from edgecv.evaluate.detect import coco_evaluated, score_outputs, to_coco_results

    classes = [c["name"] for c in es.targets["categories"]]
    dets = score_outputs(outputs, es.targets, classes)[1]
    n = len(es.targets["images"])
    results = to_coco_results(dets, list(range(1, n + 1)))  # to_coco numbers the images 1..n in eval-set order
    if not results:
        return lambda idx: 0.0
    ev = coco_evaluated(es.targets, results)
    full = ev._paramsEval  # evalImgs: [category][area range][image], images sorted by id
    t, a = int(np.flatnonzero(np.isclose(full.iouThrs, 0.5))[0]), full.areaRngLbl.index("all")
    ids, areas = list(full.imgIds), len(full.areaRng)
    per_class = [[_at_iou(ev.evalImgs[(k * areas + a) * n + i], t) for i in range(n)] for k in range(len(full.catIds))]
    p = ev._paramsEval = copy.deepcopy(full)  # what accumulate reads and what it indexes evalImgs by: the one slice
    p.iouThrs, p.areaRng, p.areaRngLbl, p.maxDets = np.array([0.5]), [full.areaRng[a]], ["all"], [full.maxDets[-1]]

    def score(idx: np.ndarray) -> float:
        drawn = idx.tolist()
        ev.evalImgs = [images[i] for images in per_class for i in drawn]
        p.imgIds = [ids[i] for i in drawn]
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate(p)
        prec = ev.eval["precision"][0, :, :, 0, 0]  # IoU 0.5, every recall and class
        return float(prec[prec > -1].mean()) if (prec > -1).any() else -1.0

    return score


def _at_iou(e: dict | None, t: int) -> dict | None:
    """One image's matches (``COCOeval.evaluateImg``) at IoU threshold ``t`` only."""
    return e and {
        **e,
        "dtMatches": e["dtMatches"][t : t + 1],
        "dtIgnore": e["dtIgnore"][t : t + 1],
        "gtMatches": e["gtMatches"][t : t + 1],
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))


def paired_drop_interval(
    make: Callable[[list, Any], Scorer], outputs: list, reference: list, es: Any, draws: int, seed: int = 0
) -> dict[str, Any]:
    """The 95% percentile interval (points) of (reference - artifact) over ``draws`` paired bootstrap draws of the
    test images, scored by the task's scorer ``make`` (its ``TaskMetric.scorer``); ``None`` bounds when the draws
    cannot score the metric (too few images)."""
    if _same(outputs, reference):  # the reference itself (an imported model's own row): every draw's drop is 0
        return {"low": 0.0, "high": 0.0, "level": LEVEL, "draws": 0, "seed": seed, "method": "identical outputs: no draw needed"}
    art, ref = make(outputs, es), make(reference, es)
    n, rng = len(es.images), np.random.default_rng(seed)
    drops = np.array([ref(idx) - art(idx) for idx in (rng.integers(0, n, n) for _ in range(draws))]) * 100
    drops = drops[np.isfinite(drops)]
    lo, hi = (
        (None, None)
        if len(drops) < draws / 2
        else (float(x) for x in np.percentile(drops, [50 * (1 - LEVEL), 100 - 50 * (1 - LEVEL)]))
    )
    return {
        "low": lo,
        "high": hi,
        "level": LEVEL,
        "draws": draws,
        "seed": seed,
        "method": "paired bootstrap over the test images (percentile interval)",
    }
