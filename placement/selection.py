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

__all__ = ["SELECTIONS", "mc", "mmt", "mu", "r_squared", "rs"]

FloatA = NDArray[np.float64]

SELECTIONS: Final = ("mmt", "mc", "rs", "mu")
# a regressor whose part outside the span of the earlier ones is below this share of its norm
# adds nothing: an exact dependence leaves rounding noise (~1e-15), real histories far more
RANK_TOL: Final = 1e-8


def mmt(ram: FloatA) -> int:
    """Index of the VM with the least memory (fastest to migrate); -1 if none."""
    return int(np.argmin(ram)) if ram.size else -1


def mu(util: FloatA) -> int:
    """Index of the VM with the lowest CPU utilisation; -1 if none."""
    return int(np.argmin(util)) if util.size else -1


def rs(n: int, rng: np.random.Generator) -> int:
    """A uniformly random index in ``range(n)``; -1 if ``n == 0``."""
    return int(rng.integers(n)) if n else -1


def _dot(a: FloatA, b: FloatA) -> FloatA:
    """Row-wise ``sum(a * b)`` over the last axis: the products rounded one by one, then
    numpy's own sum (its fixed pairwise order); no BLAS, whose kernels differ by machine."""
    out: FloatA = (a * b).sum(axis=-1)
    return out


def _residuals(cols: FloatA, y: FloatA) -> FloatA:
    """(B, m): the residual of each ``y[b]`` projected on the span of ``cols[b]``.

    Modified Gram-Schmidt over the columns ``cols[b, 0], cols[b, 1], ...`` in order,
    vectorised over the batch ``b``, then ``y`` projected out one orthonormal column at a
    time (MGS on the augmented matrix ``[cols, y]``, whose residual is backward stable).
    Elementwise operations and :func:`_dot` only, in a fixed order: no BLAS or LAPACK.
    A column whose norm after orthogonalisation is below ``RANK_TOL`` times its norm
    before lies in the span of the earlier ones: it is skipped (its ``q`` stays 0). That
    leaves the span, so the residual is the least-squares one whatever the rank: the
    residual of numpy.linalg.lstsq's minimum-norm solution.

    cols : (B, p, m) float64, ``p`` regressors of ``m`` samples per batch element
    y : (B, m) float64
    """
    q = np.zeros_like(cols)
    for j in range(cols.shape[1]):  # p <= VMs on one host: loops over columns, not samples
        v = cols[:, j].copy()
        for i in range(j):
            v -= _dot(q[:, i], v)[:, None] * q[:, i]
        norm = np.sqrt(_dot(v, v))
        keep = norm > RANK_TOL * np.sqrt(_dot(cols[:, j], cols[:, j]))
        q[keep, j] = v[keep] / norm[keep, None]
    r = y.copy()
    for j in range(cols.shape[1]):
        r -= _dot(q[:, j], r)[:, None] * q[:, j]
    return r


def r_squared(history: FloatA) -> FloatA:
    """(n,) R^2 of each VM's history regressed (with an intercept) on the others'.

    history : (n, m) float64, n VMs of m samples (m > n for a determined regression)

    NaN for a constant history. Each regression's design is ``[1, the other rows in their
    order]``, all n solved together by :func:`_residuals`: a fixed order without BLAS or
    LAPACK, so the values, and MC's picks, do not depend on the machine's BLAS kernel
    (``numpy.linalg.lstsq`` gave different values under different OpenBLAS kernels).
    """
    n, m = history.shape
    j = np.arange(n - 1)
    others = j + (j >= np.arange(n)[:, None])  # row i: every VM but i, in order
    cols = np.concatenate([np.ones((n, 1, m)), history[others]], axis=1)
    resid = _residuals(cols, history)
    dev = history - history.mean(axis=1, keepdims=True)
    sst = _dot(dev, dev)
    constant = (history == history[:, :1]).all(axis=1)  # its mean may round: sst > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatA = np.where(constant, np.nan, 1.0 - _dot(resid, resid) / sst)
    return out


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
    r2 = r_squared(history)
    r2 = np.where(np.isnan(r2), -np.inf, r2)
    best = int(np.argmax(r2))  # the first of equal values
    return best if r2[best] > np.finfo(np.float64).tiny else 0
