"""The constant-velocity Kalman filter of SORT / DeepSORT / ByteTrack, batched over tracks (numpy only).

State: box centre x, y, aspect ratio a = w / h, height h, and their velocities. Process and measurement noise
scale with the box height (ByteTrack's weights: 1/20 for position, 1/160 for velocity), so a far, small object
and a near, large one are tracked alike.

In this model the four coordinates never mix: the motion matrix pairs each coordinate only with its own velocity,
and the initial, process and measurement covariances are diagonal, so the 8x8 covariance stays made of four
independent 2x2 (position, velocity) blocks and the filter is exactly four 2-state filters. It is computed that
way, elementwise over (tracks, coordinates), instead of with 8x8 matrices and a batched 4x4 solve (which cost
~1 ms per frame at 100 tracks here); tests/runtime/track/test_bytetrack.py checks it against the matrix form.
``cov`` is (n, 3, 4): the position variance, the position-velocity covariance and the velocity variance of each
coordinate.
"""

from __future__ import annotations

import numpy as np

_POS, _VEL = 1.0 / 20, 1.0 / 160
_A_POS, _A_VEL, _A_MEAS = 1e-2, 1e-5, 1e-1  # the aspect ratio's noise is absolute, not relative to the height


def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    h = np.maximum(h, 1e-3)
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w / h, h], 1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    w = xyah[:, 2] * xyah[:, 3]
    return np.stack([xyah[:, 0] - w / 2, xyah[:, 1] - xyah[:, 3] / 2, xyah[:, 0] + w / 2, xyah[:, 1] + xyah[:, 3] / 2], 1)


def _std(h: np.ndarray, weight: float, aspect: float) -> np.ndarray:
    """(n, 4) standard deviations for x, y, a, h: ``weight`` times the height, the aspect ratio's absolute."""
    s = np.repeat((weight * h)[:, None], 4, 1)
    s[:, 2] = aspect
    return s


def initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (n, 8) and covariances (n, 3, 4) of new tracks from their first boxes (velocity unknown)."""
    n, h = len(xyah), xyah[:, 3]
    mean = np.concatenate([xyah, np.zeros((n, 4))], 1)
    cov = np.zeros((n, 3, 4))
    cov[:, 0] = _std(h, 2 * _POS, _A_POS) ** 2
    cov[:, 2] = _std(h, 10 * _VEL, _A_VEL) ** 2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead, for every track at once: x += v; P = F P F' + Q."""
    if not len(mean):
        return mean, cov
    h = mean[:, 3]
    pp, pv, vv = cov[:, 0], cov[:, 1], cov[:, 2]
    out = np.empty_like(cov)
    out[:, 0] = pp + 2 * pv + vv + _std(h, _POS, _A_POS) ** 2
    out[:, 1] = pv + vv
    out[:, 2] = vv + _std(h, _VEL, _A_VEL) ** 2
    mean = mean.copy()
    mean[:, :4] += mean[:, 4:]
    return mean, out


def update(mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct each track (row) with its matched box (row of ``xyah``): K = P H' S^-1, x += K y, P -= K S K'."""
    if not len(mean):
        return mean, cov
    h = mean[:, 3]
    pp, pv, vv = cov[:, 0], cov[:, 1], cov[:, 2]
    s = pp + _std(h, _POS, _A_MEAS) ** 2  # innovation variance per coordinate (S is diagonal)
    kp, kv = pp / s, pv / s
    innovation = xyah - mean[:, :4]
    mean = np.concatenate([mean[:, :4] + kp * innovation, mean[:, 4:] + kv * innovation], 1)
    out = np.stack([pp - kp * pp, pv - kp * pv, vv - kv * pv], 1)
    return mean, out
