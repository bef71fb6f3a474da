"""Forecast kernels shared by the live engine and the simulator: pure array code.

:func:`window_quantile` is the demand forecast the forecaster backtest chose
(``bench/RESULTS-forecast.md``): the ``q`` quantile of each VM's last ``W`` samples. The
simulator's xdrs-demand policy (``xdrs.sim.demand``) and the engine's optional demand
estimate (``EngineArgs.demand_window``) both run this one definition.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["window_quantile"]

FloatA = NDArray[np.float64]


def window_quantile(win: FloatA, q: float) -> FloatA:
    """``(..., W)`` windows (NaN where no sample yet) -> ``(...)`` the ``q`` quantile of each
    window's samples, the ``higher`` order statistic (never interpolated below a sample);
    NaN for a window with no sample."""
    n = np.sum(~np.isnan(win), axis=-1)
    srt = np.sort(win, axis=-1)  # NaN sorts last
    k = np.ceil(q * np.maximum(n, 1)).astype(np.int64) - 1
    k = np.clip(k, 0, win.shape[-1] - 1)
    out = np.take_along_axis(srt, k[..., None], axis=-1)[..., 0]
    return np.where(n > 0, out, np.nan)
