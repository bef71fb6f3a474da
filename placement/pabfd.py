"""Power-aware best-fit decreasing (PABFD) placement, as in CloudSim 3.0.3.

VMs are placed in decreasing order of CPU demand; each goes to the host whose power draw
rises least, among the hosts that can take it (a free core fast enough, enough free MIPS,
memory and network) and, for non-empty hosts, that the overload detector would not flag
after the allocation. The detector check is left to the caller (it is policy specific);
these kernels give the masks and the choice, vectorised over hosts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from placement.power import spec_power

__all__ = ["choose", "first_fit", "power_increase", "sort_decreasing", "suitable"]

FloatA = NDArray[np.float64]
BoolA = NDArray[np.bool_]
IntA = NDArray[np.int64]


def sort_decreasing(mips: FloatA) -> IntA:
    """Order of VMs by decreasing CPU demand; ties keep their given order (stable)."""
    return np.argsort(-np.asarray(mips, dtype=np.float64), kind="stable").astype(np.int64)


def suitable(
    req: float,
    ram: float,
    bw: float,
    pe_mips: FloatA,
    avail_mips: FloatA,
    ram_free: FloatA,
    bw_free: FloatA,
) -> BoolA:
    """(H,) hosts that can take a single-core VM requesting ``req`` MIPS (``isSuitableForVm``)."""
    return (pe_mips >= req) & (avail_mips >= req) & (ram_free >= ram) & (bw_free >= bw)


def power_increase(
    req: float,
    alloc_mips: FloatA,
    total_mips: FloatA,
    util_now: FloatA,
    table: FloatA,
) -> FloatA:
    """(H,) W a host would draw more with the VM: ``P((alloc + req) / total) - P(util_now)``.

    ``util_now`` is the utilisation the host had at the start of the decision (CloudSim's
    ``host.getPower()`` does not see VMs placed earlier in the same decision).
    """
    after = np.minimum((alloc_mips + req) / total_mips, 1.0)
    return spec_power(after, table) - spec_power(util_now, table)


def choose(increase: FloatA, ok: BoolA) -> int:
    """Index of the first host with the least ``increase`` among ``ok``; -1 if none."""
    masked = np.where(ok, increase, np.inf)
    i = int(np.argmin(masked)) if masked.size else -1
    return i if i >= 0 and ok[i] else -1


def first_fit(ok: BoolA) -> int:
    """Index of the first ``ok`` host; -1 if none."""
    return int(np.argmax(ok)) if ok.any() else -1
