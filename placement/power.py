"""SPECpower-style power curves, interpolated exactly as CloudSim's ``PowerModelSpecPower``.

Pure array code: watts from CPU utilisation, no I/O.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["spec_power", "spec_power_rows"]

FloatA = NDArray[np.float64]


def spec_power(util: FloatA, table: FloatA) -> FloatA:
    """Power in W of hosts at CPU utilisation ``util``.

    Parameters
    ----------
    util : (n,) float64 in [0, 1]
        CPU utilisation of each host (fraction of its MIPS).
    table : (n, 11) float64, W
        Power at 0 %, 10 %, ..., 100 % load of each host.

    Returns
    -------
    (n,) float64, W. Between the 11 points power is linear; the float operations follow
    CloudSim 3.0.3 (``P1 + (P2 - P1) / 10 * (u - i1 / 10) * 100``) so that energies match
    its output to the last printed digit.
    """
    base = np.arange(0, table.size, table.shape[1])
    return spec_power_rows(np.asarray(util, dtype=np.float64), table.ravel(), base)


def spec_power_rows(u: FloatA, flat: FloatA, base: NDArray[np.int64]) -> FloatA:
    """:func:`spec_power` with the table raveled and each host's row offset precomputed."""
    u10 = u * 10
    lo = u10.astype(np.int64)  # floor for u >= 0; also CloudSim's (int) (u * 10)
    p1 = flat[base + lo]
    p2 = flat[base + np.ceil(u10).astype(np.int64)]
    # CloudSim returns the table value when u % 0.1 == 0; that only happens for u = 0 and
    # u = 0.1 * 2**k, where u - lo / 10 is exactly 0 and this formula gives p1 too
    out: FloatA = p1 + (p2 - p1) / 10 * (u - lo / 10) * 100
    return out
