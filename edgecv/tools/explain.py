"""``edgecv explain``: what a trained classifier looks at in one image.

Two maps, both at the image's own resolution and scaled to [0, 1]:

- **gradient saliency** (Simonyan, Vedaldi & Zisserman 2013, "Deep Inside Convolutional Networks"): the
  absolute gradient of the class logit with respect to the input pixels, max over colour channels;
- **Grad-CAM** (Selvaraju et al. 2017): the last spatial feature map weighted by its spatially averaged
  gradient, summed over channels, ReLU, upsampled.

The image goes through the same resize and normalisation as evaluation (and the device). Written as PNGs:
``<folder>_<stem>_saliency.png`` (image | heat map) and ``<folder>_<stem>_gradcam.png`` (image | overlay), named
after the image's path (``edgecv._outputs``) so one image's maps never replace another's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from edgecv._outputs import output_stem
from edgecv.data.augment import eval_transform
from edgecv.data.imagefolder import UnreadableImage, read_rgb
from edgecv.errors import EdgecvError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Explanation:
    image: Path
    class_index: int
    label: str
    score: float  # softmax probability of the explained class
    layer: str  # the Grad-CAM layer
    saliency: np.ndarray  # H x W float32 in [0, 1], image resolution
    gradcam: np.ndarray  # H x W float32 in [0, 1], image resolution
    predicted: bool = True  # the explained class is the model's prediction (not one asked for with a target)

    def hottest(self, which: str = "saliency", sigma: float = 0.04) -> tuple[int, int]:
        """(x, y) of the map's peak after a Gaussian blur of ``sigma`` x the image's longer side (one hot pixel
        on a texture is not a region)."""
        m = self.saliency if which == "saliency" else self.gradcam
        s = max(1.0, sigma * max(m.shape))
        y, x = np.unravel_index(int(np.argmax(cv2.GaussianBlur(m, (0, 0), s))), m.shape)
        return int(x), int(y)


def last_spatial_layer(model: nn.Module, size: int) -> str:
    """Name of the last leaf module (in execution order) whose output is a B x C x H x W map with H, W > 1:
    the feature map the classifier pools."""
    order: list[str] = []
    hooks = [
        m.register_forward_hook(
            lambda _m, _a, out, n=name: order.append(n)
            if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-1] > 1
            else None
        )
        for name, m in model.named_modules()
        if not list(m.children())
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    if not order:
        raise EdgecvError("the model has no spatial feature map for Grad-CAM")
    return order[-1]


def _normalize(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = cv2.resize(m.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    m -= m.min()
    peak = m.max()
    return m / peak if peak > 0 else m


def smooth_saliency(
    model: nn.Module, x: torch.Tensor, idx: int, samples: int = 16, noise: float = 0.15, seed: int = 0
) -> np.ndarray:
    """|d logit / d pixel|, max over channels, averaged over ``samples`` copies of ``x`` with Gaussian noise of
    ``noise`` x the input's range (SmoothGrad, Smilkov et al. 2017; ``samples=1, noise=0`` is the plain map of
    Simonyan et al.). The plain gradient is speckled by the texture of the background; averaging keeps what is
    consistently important."""
    g = torch.Generator().manual_seed(seed)
    sigma = noise * float(x.max() - x.min())
    xs = (x + sigma * torch.randn((samples, *x.shape[1:]), generator=g)).requires_grad_(True)
    model(xs)[:, idx].sum().backward()
    return xs.grad.abs().amax(1).mean(0).numpy()


def explain_image(
    model: nn.Module,
    meta: dict,
    image: str | Path,
    target: int | str | None = None,
    layer: str | None = None,
    samples: int = 16,
    noise: float = 0.15,
) -> Explanation:
    """Saliency and Grad-CAM of ``model`` (a classifier in eval mode) on ``image`` for ``target`` (a class index or
    name; default: the predicted class)."""
    try:
        rgb = read_rgb(image)
    except UnreadableImage as exc:
        raise EdgecvError(f"{image}: {exc}; explain takes one still image (.jpg, .png, ...)") from None
    size, classes = meta.input_size, list(meta.classes)
    x = torch.from_numpy(eval_transform(size, meta.mean, meta.std)(rgb))[None]
    layer = layer or last_spatial_layer(model, size)
    modules = dict(model.named_modules())
    if layer not in modules:
        raise EdgecvError(f"no layer {layer!r} in the model")
    store: dict[str, torch.Tensor] = {}

    def keep(_m, _a, out):
        out.retain_grad()
        store["act"] = out

    handle = modules[layer].register_forward_hook(keep)
    try:
        logits = model.eval()(x)
    finally:
        handle.remove()
    if target is None:
        idx = int(logits.argmax(1))
    elif isinstance(target, str):
        if target not in classes:
            raise EdgecvError(f"unknown class {target!r}; classes: {', '.join(classes)}")
        idx = classes.index(target)
    else:
        idx = int(target)
    model.zero_grad(set_to_none=True)
    logits[0, idx].backward()
    act, grad = store["act"], store["act"].grad
    if min(act.shape[-2:]) < 4:
        log.warning("Grad-CAM: layer %s is only %dx%d at input %d px; the map is coarse", layer, *act.shape[-2:], size)
    cam = torch.relu((grad.mean((2, 3), keepdim=True) * act).sum(1))[0].detach().numpy()
    saliency = smooth_saliency(model, x, idx, samples, noise)
    shape = rgb.shape[:2]
    return Explanation(
        image=Path(image),
        class_index=idx,
        label=classes[idx],
        predicted=idx == int(logits.argmax(1)),
        score=float(logits.detach().softmax(1)[0, idx]),
        layer=layer,
        saliency=_normalize(saliency, shape),
        gradcam=_normalize(cam, shape),
    )


def _heat(m: np.ndarray) -> np.ndarray:
    return cv2.applyColorMap((m * 255).round().astype(np.uint8), cv2.COLORMAP_JET)  # BGR


def write_pngs(e: Explanation, out: str | Path) -> tuple[Path, Path]:
    """Write ``<name>_saliency.png`` and ``<name>_gradcam.png`` into ``out`` (``<name>`` from the image's path, and
    the class explained when it is not the predicted one); the hottest point is circled."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = output_stem(e.image, out) + ("" if e.predicted else f"_as_{e.label}")
    bgr = cv2.cvtColor(read_rgb(e.image), cv2.COLOR_RGB2BGR)
    r = max(3, max(bgr.shape[:2]) // 30)
    paths = []
    for which, panel in (("saliency", _heat(e.saliency)), ("gradcam", cv2.addWeighted(bgr, 0.5, _heat(e.gradcam), 0.5, 0))):
        cv2.circle(panel, e.hottest(which), r, (255, 255, 255), max(1, r // 3))
        side = np.concatenate([bgr, panel], axis=1)
        cv2.putText(side, f"{e.label} {e.score:.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        path = out / f"{name}_{which}.png"
        if not cv2.imwrite(str(path), side):
            raise EdgecvError(f"cannot write {path}")
        paths.append(path)
    return paths[0], paths[1]


def explain_run(
    run_dir: str | Path,
    image: str | Path,
    out: str | Path | None = None,
    target: int | str | None = None,
    layer: str | None = None,
    samples: int = 16,
    noise: float = 0.15,
) -> tuple[Explanation, tuple[Path, Path]]:
    """Load ``run_dir/best.pt``, explain ``image`` and write the PNGs (default folder: ``run_dir/explain``)."""
    from edgecv.models.loading import load_classifier

    model, meta = load_classifier(Path(run_dir) / "best.pt")
    e = explain_image(model, meta, image, target, layer, samples, noise)
    return e, write_pngs(e, out or Path(run_dir) / "explain")
