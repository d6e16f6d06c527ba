"""Stage 1's feature cache: computed once, then loaded; feature maps kept as float16 on disk, with a fresh run
training on the same rounded values a resumed run loads."""

from __future__ import annotations

import torch

from edgecv.train.cache import FeatureSet, cached
from edgecv.train.distributed import DistInfo

INFO = DistInfo(0, 1, torch.device("cpu"))


def _compute(shape, calls):
    def compute() -> FeatureSet:
        calls.append(1)
        return FeatureSet(torch.randn(*shape, generator=torch.Generator().manual_seed(0)), torch.arange(shape[0]), 2)

    return compute


def test_feature_maps_are_stored_half_and_fresh_equals_resumed(tmp_path):
    calls: list[int] = []
    path = tmp_path / "maps.pt"
    fresh = cached(path, INFO, _compute((5, 8, 3, 3), calls))
    resumed = cached(path, INFO, _compute((5, 8, 3, 3), calls))
    assert len(calls) == 1 and resumed.skipped == 2
    assert torch.load(path, weights_only=True)["features"].dtype == torch.float16
    assert fresh.features.dtype == resumed.features.dtype == torch.float32
    torch.testing.assert_close(fresh.features, resumed.features, rtol=0, atol=0)
    raw = _compute((5, 8, 3, 3), [])().features
    assert 0 < float((fresh.features - raw).abs().max()) < 1e-2  # rounded to half, not lost


def test_pooled_features_stay_float32(tmp_path):
    path = tmp_path / "pooled.pt"
    fresh = cached(path, INFO, _compute((5, 8), []))
    assert torch.load(path, weights_only=True)["features"].dtype == torch.float32
    torch.testing.assert_close(fresh.features, _compute((5, 8), [])().features, rtol=0, atol=0)
