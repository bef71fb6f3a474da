"""VM selection rules of Beloglazov & Buyya (2012): which VM leaves an overloaded host.

Each rule takes the arrays of one host's VMs, in the host's list order, and returns the
index of the VM to migrate (ties go to the first VM in list order, as in CloudSim).

- ``mmt``: minimum migration time = smallest memory.
- ``mu``: minimum CPU utilisation.
- ``rs``: random selection from a seeded generator.
- ``mc``: maximum correlation: the VM whose utilisation history is best explained (highest
  R^2 of a multiple linear regression) by the histories of the other VMs on the host.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["SELECTIONS", "mc", "mmt", "mu", "rs"]

FloatA = NDArray[np.float64]

SELECTIONS: Final = ("mmt", "mc", "rs", "mu")


def mmt(ram: FloatA) -> int:
    """Index of the VM with the least memory (fastest to migrate); -1 if none."""
    return int(np.argmin(ram)) if ram.size else -1


def mu(util: FloatA) -> int:
    """Index of the VM with the lowest CPU utilisation; -1 if none."""
    return int(np.argmin(util)) if util.size else -1


def rs(n: int, rng: np.random.Generator) -> int:
    """A uniformly random index in ``range(n)``; -1 if ``n == 0``."""
    return int(rng.integers(n)) if n else -1


def _r_squared(y: FloatA, x: FloatA) -> float:
    design = np.column_stack([np.ones(y.shape[0]), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    sst = float(((y - y.mean()) ** 2).sum())
    return float("nan") if sst == 0 else 1.0 - float(resid @ resid) / sst


def mc(history: FloatA, ram: FloatA) -> int:
    """Index of the VM with the highest R^2 against the others; MMT when undetermined.

    Parameters
    ----------
    history : (n, m) float64
        Utilisation history of the n VMs (their ``m`` most recent common samples).
    ram : (n,) float64
        Memory of each VM, for the MMT fallback.

    The regression needs more samples than regressors (m > n), else the rule falls back to
    MMT like CloudSim does when the regression throws. NaN R^2 (constant history) never wins.
    """
    n, m = history.shape
    if n < 2 or m <= n:
        return mmt(ram)
    best, best_r2 = 0, float(np.finfo(np.float64).tiny)
    for i in range(n):  # n <= VMs on one host
        r2 = _r_squared(history[i], np.delete(history, i, axis=0).T)
        if r2 > best_r2:
            best, best_r2 = i, r2
    return best
