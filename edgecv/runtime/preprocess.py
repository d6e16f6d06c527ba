"""Frame -> input tensor, numpy + OpenCV only.

The trainer evaluates through these same functions, so a model sees identical pixels at evaluation
time and on the device (the usual source of "accurate in training, wrong on the Pi").
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
    """Plain resize to size x size (bilinear), the classifier's eval and device transform."""
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)


def normalize_hwc(rgb_u8: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 HxWx3 -> float32 HxWx3 with (x/255 - mean) / std, as one fused multiply-add."""
    scale = (1.0 / (255.0 * np.asarray(std, dtype=np.float32))).astype(np.float32)
    shift = (-np.asarray(mean, dtype=np.float32) / np.asarray(std, dtype=np.float32)).astype(np.float32)
    return rgb_u8.astype(np.float32) * scale + shift


def to_chw(hwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))


def classify_input_chw(rgb_u8: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """RGB uint8 image -> float32 3xSxS: resize, normalise, channels first."""
    return to_chw(normalize_hwc(resize_rgb(rgb_u8, size), mean, std))
