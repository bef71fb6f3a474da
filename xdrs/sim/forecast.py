"""Demand forecasters: every VM at once, from its past samples only.

Each forecaster answers "what will a VM's CPU demand be ``h`` intervals from now" given the
samples up to now. Two kinds: point forecasts (last value, EWMA, seasonal) and forecasts of
a quantile ``q`` directly (a rolling empirical quantile of the recent samples, and the last
value plus a rolling quantile of the recent ``h``-step changes). :func:`backtest_all`
produces, for a whole day at once, the forecast made after every sample, so a backtest
compares them on the same (VM, time) pairs; :func:`window_quantile` is the one quantile
rule, shared by the backtest and the simulator's policy (:mod:`xdrs.sim.demand`).

Arrays: ``y`` is ``(V, T)`` float64 demand (any unit, e.g. CPU %), time along axis 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from placement.forecast import window_quantile

__all__ = [
    "FORECASTERS",
    "ewma",
    "exceed_rate",
    "last_value",
    "pinball",
    "rolling_quantile",
    "seasonal",
    "step_quantile",
    "window_quantile",
]

FloatA = NDArray[np.float64]


def _windows(y: FloatA, w: int) -> FloatA:
    """``(V, T, W)``: at each time the last ``w`` samples up to and including it."""
    pad = np.full((y.shape[0], w - 1), np.nan)
    return sliding_window_view(np.concatenate([pad, y], axis=1), w, axis=1)


def last_value(y: FloatA, h: int) -> FloatA:
    """``(V, T)``: the forecast made after sample ``t`` is sample ``t``, for any horizon."""
    del h
    return y.copy()


def ewma(y: FloatA, h: int, alpha: float = 0.3) -> FloatA:
    """Exponentially weighted mean, ``s_t = alpha * y_t + (1 - alpha) * s_{t-1}``."""
    del h
    out = np.empty_like(y)
    s = y[:, 0].copy()
    for t in range(y.shape[1]):  # a loop over time, every VM at once
        s = alpha * y[:, t] + (1.0 - alpha) * s
        out[:, t] = s
    return out


def seasonal(y: FloatA, h: int, prev: FloatA) -> FloatA:
    """The same VM's demand at the target time on the previous day (``prev (V, T)``; NaN
    where the VM was not there), else the last value."""
    out = y.copy()
    t = y.shape[1]
    ahead = np.full_like(y, np.nan)
    if h < t:
        ahead[:, : t - h] = prev[:, h:t]
    return np.where(np.isnan(ahead), out, ahead)


def rolling_quantile(y: FloatA, h: int, q: float, window: int = 12) -> FloatA:
    """The ``q`` quantile of the last ``window`` samples (a per-VM empirical quantile)."""
    del h
    return window_quantile(_windows(y, window), q)


def step_quantile(y: FloatA, h: int, q: float, window: int = 36) -> FloatA:
    """The last value plus the ``q`` quantile of the VM's last ``window`` changes over
    ``h`` intervals (``y_t - y_{t-h}``); the last value alone until a change is seen."""
    d = np.full_like(y, np.nan)
    if 0 < h < y.shape[1]:
        d[:, h:] = y[:, h:] - y[:, :-h]
    up = window_quantile(_windows(d, window), q)
    return np.asarray(y + np.nan_to_num(up, nan=0.0))


def pinball(y: FloatA, f: FloatA, q: float) -> float:
    """Mean pinball (quantile) loss of forecasts ``f`` for outcomes ``y`` at level ``q``."""
    e = y - f
    return float(np.mean(np.maximum(q * e, (q - 1.0) * e)))


def exceed_rate(y: FloatA, f: FloatA) -> float:
    """Fraction of outcomes above their forecast."""
    return float(np.mean(y > f))


Forecaster = Callable[..., FloatA]
# name -> (function, needs the quantile level, needs the previous day)
FORECASTERS: dict[str, tuple[Forecaster, bool, bool]] = {
    "last": (last_value, False, False),
    "ewma": (ewma, False, False),
    "seasonal": (seasonal, False, True),
    "rolling-quantile": (rolling_quantile, True, False),
    "step-quantile": (step_quantile, True, False),
}
