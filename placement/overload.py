"""Host overload detectors of Beloglazov & Buyya (2012), vectorised over hosts.

Each detector looks at a host's CPU-utilisation history (newest sample first, the way
CloudSim keeps it) and its current requested utilisation. Histories are ``(H, L)`` arrays;
a row's valid part is its first ``length`` samples (CloudSim trims trailing zeros).

Detectors: ``thr`` (static threshold), ``iqr`` and ``mad`` (adaptive threshold
``1 - s * spread``), ``lr`` and ``lrr`` (least-squares prediction of the next utilisation,
times a safety factor; CloudSim 3.0.3 reduces both to ordinary least squares). Rows
with too short a history fall back to a static threshold of 0.7, as in CloudSim.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DETECTORS",
    "FALLBACK_THRESHOLD",
    "iqr_threshold",
    "lr_prediction",
    "mad_threshold",
    "overloaded",
    "trimmed_length",
]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]
BoolA = NDArray[np.bool_]

FALLBACK_THRESHOLD: Final = 0.7
MIN_ROBUST: Final = 12  # samples IQR/MAD need ("12 has been suggested as a safe value")
LR_WINDOW: Final = 10  # samples the regression uses
DETECTORS: Final = ("thr", "iqr", "mad", "lr", "lrr")


def trimmed_length(hist: FloatA) -> IntA:
    """(H,) number of samples up to and including the last non-zero one of each row."""
    nz = hist != 0
    last = hist.shape[1] - np.argmax(nz[:, ::-1], axis=1)
    return np.where(nz.any(axis=1), last, 0).astype(np.int64)


def _masked(hist: FloatA, length: IntA) -> FloatA:
    cols = np.arange(hist.shape[1])
    return np.where(cols[None, :] < length[:, None], hist, np.nan)


def _median_sorted(x: FloatA, n: IntA) -> FloatA:
    """Median of each row's first ``n`` values of the row-sorted ``x``, computed like
    Apache Commons' ``Percentile(50)``: ``lower + 0.5 * (upper - lower)`` for even ``n``."""
    rows = np.arange(x.shape[0])
    lo = x[rows, (n - 1) // 2]
    hi = x[rows, n // 2]
    return np.where(n % 2 == 1, lo, lo + 0.5 * (hi - lo))


def mad_threshold(hist: FloatA, length: IntA, safety: float) -> FloatA:
    """(H,) ``1 - safety * MAD`` of each history; NaN where fewer than 12 samples."""
    ok = length >= MIN_ROBUST
    out = np.full(hist.shape[0], np.nan)
    if ok.any():
        n = length[ok]
        x = np.sort(_masked(hist[ok], n), axis=1)  # NaNs sort last
        med = _median_sorted(x, n)
        dev = np.sort(np.abs(med[:, None] - x), axis=1)
        out[ok] = 1 - safety * _median_sorted(dev, n)
    return out


def iqr_threshold(hist: FloatA, length: IntA, safety: float) -> FloatA:
    """(H,) ``1 - safety * IQR``, quartiles picked as CloudSim's ``MathUtil.iqr`` does.

    CloudSim sorts the n samples and takes elements ``round(0.25 (n + 1)) - 1`` and
    ``round(0.75 (n + 1)) - 1`` (Java rounding, halves up) -- no interpolation.
    """
    ok = length >= MIN_ROBUST
    out = np.full(hist.shape[0], np.nan)
    if ok.any():
        x = np.sort(_masked(hist[ok], length[ok]), axis=1)  # NaNs sort last
        n = length[ok]
        q1 = np.floor(0.25 * (n + 1) + 0.5).astype(np.int64) - 1
        q3 = np.floor(0.75 * (n + 1) + 0.5).astype(np.int64) - 1
        rows = np.arange(x.shape[0])
        out[ok] = 1 - safety * (x[rows, q3] - x[rows, q1])
    return out


def lr_prediction(hist: FloatA, length: IntA, safety: float, steps_ahead: int | IntA = 1) -> FloatA:
    """(H,) ``safety *`` OLS prediction ``steps_ahead`` steps past the last 10 samples.

    The regression puts the oldest of the last 10 samples at x = 1 and the newest at
    x = 10 and predicts x = 10 + steps_ahead. NaN where fewer than 10 samples.
    """
    ok = length >= LR_WINDOW
    out = np.full(hist.shape[0], np.nan)
    if ok.any():
        y = hist[ok, :LR_WINDOW][:, ::-1]
        x = np.arange(1, LR_WINDOW + 1, dtype=np.float64)
        xc = x - x.mean()
        ym = y.mean(axis=1)
        dev = y - ym[:, None]
        cov = dev[:, 0] * xc[0]  # left to right, no BLAS: the same on every machine
        for j in range(1, LR_WINDOW):
            cov = cov + dev[:, j] * xc[j]
        slope = cov / (xc * xc).sum()
        intercept = ym - slope * x.mean()
        ahead = np.broadcast_to(np.asarray(steps_ahead), ok.shape)[ok]
        out[ok] = safety * (intercept + slope * (LR_WINDOW + ahead))
    return out


def overloaded(
    kind: str,
    param: float,
    hist: FloatA,
    length: IntA,
    util: FloatA,
    fallback: float = FALLBACK_THRESHOLD,
    steps_ahead: int | IntA = 1,
) -> BoolA:
    """(H,) bool: is each host overloaded by detector ``kind`` with parameter ``param``?

    Parameters
    ----------
    kind : one of ``DETECTORS``
    param : threshold (thr) or safety parameter (iqr, mad, lr, lrr)
    hist : (H, L) float64, utilisation history, newest first
    length : (H,) int64, valid samples per row (see :func:`trimmed_length`)
    util : (H,) float64, requested CPU / host capacity now
    fallback : static threshold used where the history is too short
    steps_ahead : LR/LRR prediction horizon in steps (CloudSim: ceil(longest migration
        time of the host's VMs / interval))
    """
    if kind == "thr":
        return np.asarray(util > param)
    if kind in ("lr", "lrr"):
        pred = lr_prediction(hist, length, param, steps_ahead)
        return np.where(np.isnan(pred), util > fallback, pred >= 1)
    if kind == "mad":
        thr = mad_threshold(hist, length, param)
    elif kind == "iqr":
        thr = iqr_threshold(hist, length, param)
    else:
        raise ValueError(f"unknown overload detector {kind!r}; expected one of {DETECTORS}")
    return np.where(np.isnan(thr), util > fallback, util > thr)
