"""State-history accounting of CloudSim's ``Helper``: SLATAH and PDM as ratios of sums.

CloudSim keeps, per host and per VM, a history of (time, allocated MIPS, requested MIPS,
flag) entries; an entry at the same time as the last one replaces it. An interval counts
with the values of the entry that starts it; the last entry's interval is never counted.
These recorders keep only the last entry and running sums. Given the compiled kernels
(``kernel``), their element-wise work runs there and numpy still does every sum, over the
same values in the same order.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
from numpy.typing import NDArray

__all__ = ["HostRecorder", "VmRecorder"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]
BoolA = NDArray[np.bool_]


class _Last:
    def __init__(self, n: int) -> None:
        self.t = np.full(n, -1.0)
        self.alloc = np.zeros(n)
        self.req = np.zeros(n)
        self.flag = np.zeros(n, dtype=bool)

    def advance(self, t: float, idx: IntA) -> FloatA:
        """Seconds the last entries of series ``idx`` have lasted at ``t`` (0 if none)."""
        last = self.t[idx]
        return np.where(last >= 0, t - last, 0.0)

    def store(self, t: float, idx: IntA, alloc: FloatA, req: FloatA, flag: BoolA) -> None:
        self.t[idx] = t
        self.alloc[idx], self.req[idx], self.flag[idx] = alloc, req, flag


class HostRecorder:
    """SLA time per active host: time at which allocated < requested over active time."""

    def __init__(self, n_hosts: int, kernel: ModuleType | None = None) -> None:
        self.last = _Last(n_hosts)
        self.active_time = 0.0
        self.violation_time = 0.0
        self.kernel, self._out = kernel, np.empty((2, n_hosts))

    def record(self, t: float, alloc: FloatA, req: FloatA, active: BoolA) -> None:
        last = self.last  # every host gets an entry: whole arrays, no index
        if (k := self.kernel) is not None:
            out = self._out
            n_live, n_short = k.host_record(t, alloc, req, active, last.t, last.alloc,
                                            last.req, last.flag, out)  # fmt: skip
            self.active_time += float(out[0, :n_live].sum())
            self.violation_time += float(out[1, :n_short].sum())
            return
        dt = np.where(last.t >= 0, t - last.t, 0.0)
        live = last.flag
        self.active_time += float(dt[live].sum())
        self.violation_time += float(dt[live & (last.alloc < last.req)].sum())
        last.t[:] = t
        last.alloc[:], last.req[:], last.flag[:] = alloc, req, active

    @property
    def slatah(self) -> float:
        return self.violation_time / self.active_time if self.active_time else 0.0


class VmRecorder:
    """PDM: MIPS x s requested but not allocated while migrating, over all requested."""

    def __init__(self, n_vms: int, kernel: ModuleType | None = None) -> None:
        self.last = _Last(n_vms)
        self.requested = 0.0
        self.allocated = 0.0
        self.lost_migrating = 0.0
        self.kernel = kernel

    def record(self, t: float, idx: IntA, alloc: FloatA, req: FloatA, migrating: BoolA) -> None:
        """Entries at ``t`` of the VMs ``idx`` (unique; VMs that no longer run get none)."""
        if (k := self.kernel) is not None:
            last, out = self.last, np.empty((3, idx.shape[0]))
            n = k.vm_record(t, idx, alloc, req, migrating, last.t, last.alloc, last.req,
                            last.flag, out)  # fmt: skip
            self.requested += float(out[0].sum())
            self.allocated += float(out[1].sum())
            self.lost_migrating += float(out[2, :n].sum())
            return
        dt = self.last.advance(t, idx)
        a, r = self.last.alloc[idx], self.last.req[idx]
        self.requested += float((r * dt).sum())
        self.allocated += float((a * dt).sum())
        short = (a < r) & self.last.flag[idx]
        self.lost_migrating += float(((r - a) * dt)[short].sum())
        self.last.store(t, idx, alloc, req, migrating)

    @property
    def pdm(self) -> float:
        return self.lost_migrating / self.requested if self.requested else 0.0

    @property
    def overall(self) -> float:
        """Overall SLA violation: (requested - allocated) / requested."""
        return (self.requested - self.allocated) / self.requested if self.requested else 0.0
