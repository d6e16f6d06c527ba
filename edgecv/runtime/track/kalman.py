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
    out = np.empty((len(xyxy), 4))
    out[:, :2] = xyxy[:, :2] + xyxy[:, 2:]
    out[:, :2] *= 0.5
    out[:, 3] = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-3)
    out[:, 2] = xyxy[:, 2] - xyxy[:, 0]
    out[:, 2] /= out[:, 3]
    return out


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    half = xyah[:, 2:4] * 0.5
    half[:, 0] *= xyah[:, 3]
    return np.concatenate([xyah[:, :2] - half, xyah[:, :2] + half], 1)


# per coordinate (x, y, a, h): the noise's weight of the box height, and its absolute part (the aspect ratio's)
_W_POS, _W_VEL, _W_MEAS = (np.asarray([w, w, 0.0, w]) for w in (_POS, _VEL, _POS))
_A_POS2, _A_VEL2, _A_MEAS2 = (np.asarray([0.0, 0.0, a * a, 0.0]) for a in (_A_POS, _A_VEL, _A_MEAS))


def _var(h: np.ndarray, weight: np.ndarray, absolute: np.ndarray) -> np.ndarray:
    """(n, 4) noise variances for x, y, a, h: (weight times the height) squared, plus the absolute part."""
    v = h[:, None] * weight
    v *= v
    v += absolute
    return v


def initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (n, 8) and covariances (n, 3, 4) of new tracks from their first boxes (velocity unknown)."""
    n, h = len(xyah), xyah[:, 3]
    mean = np.concatenate([xyah, np.zeros((n, 4))], 1)
    cov = np.zeros((n, 3, 4))
    cov[:, 0] = _var(h, 2 * _W_POS, _A_POS2)
    cov[:, 2] = _var(h, 10 * _W_VEL, _A_VEL2)
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead, for every track at once: x += v; P = F P F' + Q."""
    if not len(mean):
        return mean, cov
    pp, pv, vv = cov[:, 0], cov[:, 1], cov[:, 2]
    out = np.empty_like(cov)
    np.add(pv, vv, out=out[:, 1])
    np.add(vv, _var(mean[:, 3], _W_VEL, _A_VEL2), out=out[:, 2])
    np.add(pp, pv, out=out[:, 0])
    out[:, 0] += out[:, 1]
    out[:, 0] += _var(mean[:, 3], _W_POS, _A_POS2)
    mean = mean.copy()
    mean[:, :4] += mean[:, 4:]
    return mean, out


def update(mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct each track (row) with its matched box (row of ``xyah``): K = P H' S^-1, x += K y, P -= K S K'."""
    if not len(mean):
        return mean, cov
    pp, pv, vv = cov[:, 0], cov[:, 1], cov[:, 2]
    s = pp + _var(mean[:, 3], _W_MEAS, _A_MEAS2)  # innovation variance per coordinate (S is diagonal)
    kp, kv = pp / s, pv / s
    innovation = xyah - mean[:, :4]
    out_mean = np.empty_like(mean)
    np.multiply(kp, innovation, out=out_mean[:, :4])
    out_mean[:, :4] += mean[:, :4]
    np.multiply(kv, innovation, out=out_mean[:, 4:])
    out_mean[:, 4:] += mean[:, 4:]
    out = np.empty_like(cov)
    np.multiply(kp, pp, out=out[:, 0])
    np.subtract(pp, out[:, 0], out=out[:, 0])
    np.multiply(kp, pv, out=out[:, 1])
    np.subtract(pv, out[:, 1], out=out[:, 1])
    np.multiply(kv, pv, out=out[:, 2])
    np.subtract(vv, out[:, 2], out=out[:, 2])
    return out_mean, out
