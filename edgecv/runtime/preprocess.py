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


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 with the model input's own scale and zero point (round half to even, saturated)."""
    q = np.rint(x / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def prepare_input(rgb_u8: np.ndarray, meta) -> np.ndarray:
    """RGB uint8 image -> one input tensor (no batch axis) exactly as the artifact's metadata says:
    resize, colour order, normalisation, layout and, for int8-input models, quantization."""
    if meta.resize != "stretch":
        raise ValueError(f"resize mode {meta.resize!r} is not supported by prepare_input yet")
    h, w = meta.input_size
    img = rgb_u8 if rgb_u8.shape[:2] == (h, w) else cv2.resize(rgb_u8, (w, h), interpolation=cv2.INTER_LINEAR)
    if meta.color == "BGR":
        img = img[..., ::-1]
    x = normalize_hwc(img, meta.mean, meta.std)
    x = to_chw(x) if meta.layout == "NCHW" else np.ascontiguousarray(x)
    if meta.input_quant:
        x = quantize_input(x, meta.input_quant["scale"], int(meta.input_quant["zero_point"]))
    return x
