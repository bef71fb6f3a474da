"""The sums and dot products that the reference path and the compiled kernels share.

The numpy reference path (:mod:`xdrs.sim.planning`, :mod:`xdrs.sim.hosts`) and the compiled
kernels (:mod:`xdrs.sim.kernel`) must give the same decisions to the last bit, on any machine. So
every sum they both compute is defined here once, in an explicit order that neither BLAS
nor numpy chooses: start from 0.0 and add the terms left to right, each product and each
sum rounded on its own (no fused multiply-add, no pairwise or blocked summation).

The functions are written so that the same code runs in both paths: called from numpy on
arrays whose first axis is the one summed (``x[i]`` is then a row, and the loop is
vectorised over the other axis, e.g. over hosts), and compiled by numba on 1-D arrays
(``x[i]`` is then a number). numba compiles without ``fastmath``, so LLVM does not contract
``acc + x[i] * c[i]`` into an FMA (tests/xdrs/sim/test_blas_independence.py checks the machine
code). numba's on-disk cache checks only the file that defines a cached function, so after
editing this module remove ``xdrs/sim/__pycache__/kernel.*.nb?`` (the kernels that call
these functions keep their old copies otherwise; tests/xdrs/sim/test_kernel.py would fail).
The ahead-of-time module (:mod:`xdrs.sim.aot`) hashes this file too: after an edit it is not
loaded until rebuilt.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["dot", "seq_sum"]

FloatA = NDArray[np.float64]


def dot(x: FloatA, c: FloatA) -> float | FloatA:
    """``((0 + x[0] * c[0]) + x[1] * c[1]) + ...`` over ``i < len(c)``.

    x : (N,) or (N, H) float64, at least ``len(c)`` rows; with (N, H) the result is (H,)
    c : (n,) float64 coefficients
    """
    acc = 0.0
    for i in range(c.shape[0]):
        acc = acc + x[i] * c[i]
    return acc


def seq_sum(x: FloatA) -> float | FloatA:
    """``((0 + x[0]) + x[1]) + ...``: the sum of the rows of ``x`` (N,) or (N, S) in order
    (0.0 when ``x`` is empty)."""
    acc = 0.0
    for i in range(x.shape[0]):
        acc = acc + x[i]
    return acc
