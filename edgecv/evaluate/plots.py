"""Training curves and confusion matrices as PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecv._deps import require


def _plt():
    mpl = require("matplotlib", "train", "plots")
    mpl.use("Agg")
    return require("matplotlib.pyplot", "train", "plots")


def plot_curves(history: list[dict[str, Any]], path: str | Path) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(1, len(history) + 1)
    a.plot(x, [h["train_loss"] for h in history], label="train loss")
    if any("val_loss" in h for h in history):
        a.plot(x, [h.get("val_loss", np.nan) for h in history], label="val loss")
        b.plot(x, [h.get("val_top1", np.nan) for h in history], label="val top-1", color="C2")
    for i in range(1, len(history)):
        if history[i]["stage"] != history[i - 1]["stage"]:
            for ax in (a, b):
                ax.axvline(i + 0.5, color="gray", ls="--", lw=1)
            b.text(i + 0.6, 0.02, "fine-tune", color="gray", transform=b.get_xaxis_transform())
    a.set_xlabel("epoch"), b.set_xlabel("epoch"), a.legend(), b.legend()
    b.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(cm: list[list[int]] | np.ndarray, classes: list[str], path: str | Path, title: str = "") -> None:
    plt = _plt()
    cm = np.asarray(cm)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * n + 2), max(3.5, 0.5 * n + 1.5)))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(
                        j, i, str(cm[i, j]), ha="center", va="center", fontsize=8, color="white" if norm[i, j] > 0.5 else "black"
                    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
