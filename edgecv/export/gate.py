"""The int8 accuracy gate: rank layers by int8 sensitivity, then keep the most sensitive ones in float
until an artifact's drop is within budget.

Sensitivity is measured in torch, one layer at a time: that layer's weights are fake-quantized per output
channel (symmetric int8, as every int8 path here does) and its input per tensor (int8, range observed on
the calibration images); everything else stays float. The score is the normalised squared error of the
model's outputs against fp32 on calibration images: label-free and format-neutral, so one ranking serves
the ONNX and the TFLite converters (which both take module names to keep in float).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.export.calibration import Calibration
from edgecv.export.fidelity import drop_bound

if TYPE_CHECKING:  # torch only where layers are ranked in torch (``recover`` serves imported ONNX models too)
    import torch
    from torch import nn

log = logging.getLogger(__name__)


def _fq_weight(w: torch.Tensor) -> torch.Tensor:
    import torch

    flat = w.detach().reshape(w.shape[0], -1)
    scale = (flat.abs().amax(1) / 127).clamp_min(1e-12).float()
    return torch.fake_quantize_per_channel_affine(w, scale, torch.zeros_like(scale, dtype=torch.int32), 0, -127, 127)


def _fq_input(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    import torch

    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / 255, 1e-12)
    zero = int(np.clip(round(-128 - lo / scale), -128, 127))
    return torch.fake_quantize_per_tensor_affine(x, scale, zero, -128, 127)


def quantized_layers() -> tuple[type, ...]:
    """The torch layers the gate ranks (their weights are what int8 quantizes)."""
    import torch

    return (torch.nn.Conv2d, torch.nn.Linear)


def layer_sensitivity(model: nn.Module, calibration: Calibration, meta: ArtifactMeta, n: int = 32) -> list[tuple[str, float]]:
    """(module name, score) for every Conv2d / Linear, most sensitive first."""
    import torch

    with torch.no_grad():
        return _sensitivity(model, calibration, meta, n, quantized_layers())


def _sensitivity(model, calibration, meta, n, quantized_layers) -> list[tuple[str, float]]:
    import torch

    model = model.eval()
    x = torch.from_numpy(np.concatenate(list(calibration.inputs(meta, batch=n)))[:n])
    layers = {name: m for name, m in model.named_modules() if isinstance(m, quantized_layers)}
    ranges: dict[str, list[float]] = {}

    def observe(name: str):
        def hook(_m, args):
            t = args[0]
            lo, hi = ranges.get(name, (np.inf, -np.inf))
            ranges[name] = [min(lo, float(t.min())), max(hi, float(t.max()))]

        return hook

    def run() -> list[torch.Tensor]:  # every output (a detector has boxes in pixels and scores in [0, 1])
        y = model(x)
        return list(y) if isinstance(y, tuple) else [y]

    handles = [m.register_forward_pre_hook(observe(name)) for name, m in layers.items()]
    try:
        ref = run()
    finally:
        for h in handles:
            h.remove()
    denoms = [float((r**2).mean()) + 1e-12 for r in ref]

    def nmse(out: list[torch.Tensor]) -> float:  # each output in its own units, then averaged
        return sum(float(((o - r) ** 2).mean()) / d for o, r, d in zip(out, ref, denoms)) / len(ref)

    scores = []
    for name, layer in layers.items():
        original = layer.weight.data.clone()
        lo, hi = ranges[name]
        handle = layer.register_forward_pre_hook(lambda _m, args, lo=lo, hi=hi: (_fq_input(args[0], lo, hi), *args[1:]))
        layer.weight.data = _fq_weight(original)
        try:
            scores.append((name, nmse(run())))
        finally:
            layer.weight.data = original
            handle.remove()
    return sorted(scores, key=lambda s: -s[1])


@dataclass(frozen=True)
class GateResult:
    path: Any  # the staged artifact that passed (None if none did)
    row: dict[str, Any]
    keep_float: tuple[str, ...]
    attempts: list[dict[str, Any]]


def recover(
    build: Callable[[tuple[str, ...]], Any],
    evaluate: Callable[[Any], dict[str, Any]],
    ranking: Callable[[], list[tuple[str, float]]],
    max_drop: float,
    max_float: int = 16,
    name: str | None = None,
) -> GateResult:
    """Build with no float layers; while the drop's upper 95% bound (``drop_bound``) exceeds ``max_drop``, keep the
    1, 2, 4, ... most sensitive layers in float (at most ``max_float``). Returns the first artifact within budget.
    ``name``: the artifact's name in the log lines (default: the staged file's)."""

    def attempt(keep: tuple[str, ...], row: dict[str, Any]) -> dict[str, Any]:
        return {
            "float_layers": list(keep),
            "drop_points": row["drop_points"],
            "drop_bound": drop_bound(row),
            "value": row["value"],
            "agreement": row["top1_agreement"],
        }

    path = build(())
    row = evaluate(path)
    attempts = [attempt((), row)]
    if drop_bound(row) <= max_drop:
        return GateResult(path, row, (), attempts)
    ranked = [name for name, _ in ranking()]
    limit = min(max_float, len(ranked))
    for k in sorted({min(2**i, limit) for i in range(limit.bit_length() + 1)} - {0}):
        keep = tuple(ranked[:k])
        log.info(
            "%s: int8 drop %.2f points (95%% bound %.2f) > %.2f: trying again with %d layer(s) kept in float: %s",
            name or row["file"],
            row["drop_points"],
            drop_bound(row),
            max_drop,
            k,
            ", ".join(keep),
        )
        path = build(keep)
        row = evaluate(path)
        attempts.append(attempt(keep, row))
        if drop_bound(row) <= max_drop:
            return GateResult(path, row, keep, attempts)
    return GateResult(None, row, (), attempts)
