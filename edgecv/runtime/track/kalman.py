"""The constant-velocity Kalman filter of SORT / DeepSORT / ByteTrack, batched over tracks (numpy only).

State: box centre x, y, aspect ratio a = w / h, height h, and their velocities. Process and measurement noise
scale with the box height (ByteTrack's weights: 1/20 for position, 1/160 for velocity), so a far, small object
and a near, large one are tracked alike.

In this model the four coordinates never mix: the motion matrix pairs each coordinate only with its own velocity,
and the initial, process and measurement covariances are diagonal, so the 8x8 covariance stays made of four
independent 2x2 (position, velocity) blocks and the filter is exactly four 2-state filters. It is computed that
way, elementwise over (tracks, coordinates), instead of with 8x8 matrices and a batched 4x4 solve (which cost
~1 ms per frame at 100 tracks here); tests/runtime/track/test_bytetrack.py checks it against the matrix form.
The state is held coordinate-major, each part contiguous (strided views of an (n, 8) mean cost 3-4x as much per
numpy call at 100 tracks): ``mean`` is (2, n, 4), the positions (x, y, a, h) and their velocities; ``cov`` is
(3, n, 4), the position variance, the position-velocity covariance and the velocity variance of each coordinate.
``predict`` and ``update`` change them in place.
"""

from __future__ import annotations

import numpy as np

_POS, _VEL = 1.0 / 20, 1.0 / 160
_A_POS, _A_VEL, _A_MEAS = 1e-2, 1e-5, 1e-1  # the aspect ratio's noise is absolute, not relative to the height


# xyxy -> centre x, y, width, height and back, each one small matrix product (a call, where column by column took
# five to eight; the coefficients are 0, +-1 and +-0.5, so the products are exact and the results the same bits)
_TO_CWH = np.asarray([[0.5, 0, -1, 0], [0, 0.5, 0, -1], [0.5, 0, 1, 0], [0, 0.5, 0, 1]])
_FROM_CWH = np.asarray([[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]])


def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    out = xyxy @ _TO_CWH
    np.maximum(out[:, 3], 1e-3, out=out[:, 3])
    out[:, 2] /= out[:, 3]
    return out


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    cwh = xyah.copy()
    cwh[:, 2] *= cwh[:, 3]
    return cwh @ _FROM_CWH


# per coordinate (x, y, a, h), for the position and the velocity: the noise's weight of the box height, and its
# absolute part (the aspect ratio's)
_W = np.asarray([[_POS, _POS, 0.0, _POS], [_VEL, _VEL, 0.0, _VEL]])[:, None, :]
_A = np.asarray([[0.0, 0.0, _A_POS * _A_POS, 0.0], [0.0, 0.0, _A_VEL * _A_VEL, 0.0]])[:, None, :]
_W_MEAS, _A_MEAS2 = np.asarray([_POS, _POS, 0.0, _POS]), np.asarray([0.0, 0.0, _A_MEAS * _A_MEAS, 0.0])


def _var(h: np.ndarray, weight: np.ndarray, absolute: np.ndarray) -> np.ndarray:
    """Noise variances for x, y, a, h (the shape of ``weight`` broadcast over the tracks' heights ``h`` (n, 1)):
    (weight times the height) squared, plus the absolute part."""
    v = h * weight
    v *= v
    v += absolute
    return v


def initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (2, n, 4) and covariances (3, n, 4) of new tracks from their first boxes (velocity unknown)."""
    n, h = len(xyah), xyah[:, 3:4]
    mean = np.stack([xyah, np.zeros((n, 4))])
    cov = np.zeros((3, n, 4))
    cov[0] = _var(h, 2 * _W[0], _A[0])
    cov[2] = _var(h, 10 * _W[1], _A[1])
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray) -> None:
    """One frame ahead, for every track at once, in place: x += v; P = F P F' + Q."""
    if not mean.shape[1]:
        return
    q = _var(mean[0, :, 3:4], _W, _A)  # (2, n, 4): position and velocity noise, from the height before the move
    pp, pv, vv = cov
    pp += pv
    pv += vv
    pp += pv  # pp + 2 pv + vv
    pp += q[0]
    vv += q[1]
    mean[0] += mean[1]


def update(mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray, tracks: np.ndarray | None = None) -> None:
    """Correct each track (column) with its matched box (row of ``xyah``), in place: K = P H' S^-1, x += K y,
    P -= K S K'. ``tracks``: the columns the boxes are for, the other tracks left as they are (None: every track,
    in order). (All columns are computed, the others with a gain of 0: cheaper than gathering the matched
    columns and scattering them back, at 100 tracks.)"""
    if not mean.shape[1]:
        return
    s = _var(mean[0, :, 3:4], _W_MEAS, _A_MEAS2)  # innovation variance per coordinate (S is diagonal)
    s += cov[0]
    gain = cov[:2] / s  # (2, n, 4): the position's and the velocity's gain
    if tracks is not None:
        measured = mean[0].copy()  # the other tracks' innovation: 0
        measured[tracks] = xyah
        xyah = measured
        seen = np.zeros((len(s), 1))
        seen[tracks] = 1.0
        gain *= seen
    innovation = xyah - mean[0]
    mean += gain * innovation
    cross = gain * cov[1]  # kp * pv, kv * pv
    cov[0] -= gain[0] * cov[0]
    cov[1] -= cross[0]
    cov[2] -= cross[1]
