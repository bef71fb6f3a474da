"""The planning copy of the data centre a CloudSim-style policy works on during one decision.

Mirrors what ``PowerVmAllocationPolicyMigrationAbstract.optimizeAllocation`` sees: host VM
lists (VMs can be destroyed on overloaded hosts and created on targets while planning),
each host's scheduler state, requested MIPS, utilisation history, free memory and network.
Host utilisation for power (``util_now``) stays as measured at the start of the decision,
as in CloudSim.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from placement.overload import overloaded, trimmed_length
from placement.pabfd import choose, power_increase, suitable
from xdrs.sim.engine import Context
from xdrs.sim.hosts import utilisation

__all__ = ["Planning"]

FloatA = NDArray[np.float64]
BoolA = NDArray[np.bool_]
IntA = NDArray[np.int64]


class Planning:
    """Mutable per-decision copy; ``detector`` is ``(kind, parameter)``."""

    def __init__(self, ctx: Context, detector: tuple[str, float]) -> None:
        w, st = ctx.world, ctx.state
        self.ctx, self.w, self.req = ctx, w, ctx.req
        self.kind, self.param = detector
        grid = st.grid
        e = ctx.entries
        g = np.maximum(grid, 0)
        vm_of = np.where((grid >= 0) & ~e.incoming[g], e.vm[g], -1)  # in-flight entries: -1
        self.vms: list[list[int]] = [[int(x) for x in row if x >= 0] for row in vm_of]
        self.alloc = st.alloc_mips.copy()
        self.avail = st.avail.copy()
        self.reqsum = st.req_mips.copy()
        on = ctx.host[ctx.alive]
        self.ram_free = w.host_ram - np.bincount(on, w.vm_ram[ctx.alive], w.n_hosts)
        self.bw_free = w.host_bw - np.bincount(on, w.vm_bw[ctx.alive], w.n_hosts)
        self.util_now = np.minimum(utilisation(st.util_mips, w.host_mips), 1.0)
        self.terms = ctx.vm_hist * w.vm_mips[:, None]  # history x MIPS, divided per host
        self.hist = np.zeros((w.n_hosts, ctx.vm_hist.shape[1]))
        for j in range(vm_of.shape[1]):
            col = vm_of[:, j]
            t = self.terms[np.maximum(col, 0)] / w.host_mips[:, None]
            self.hist = self.hist + np.where(col[:, None] >= 0, t, 0.0)
        self.max_ram = np.zeros(w.n_hosts)
        np.maximum.at(self.max_ram, on, w.vm_ram[ctx.alive])

    # -- detector ----------------------------------------------------------------------
    def steps_ahead(self, hosts: IntA, max_ram: FloatA) -> IntA:
        w = self.w
        secs = max_ram / (w.host_bw[hosts] / (2 * 8000))
        return np.ceil(secs / w.interval).astype(np.int64)

    def overloaded(self, hosts: IntA) -> BoolA:
        h = self.hist[hosts]
        util = self.reqsum[hosts] / self.w.host_mips[hosts]
        ahead = self.steps_ahead(hosts, self.max_ram[hosts])
        return overloaded(self.kind, self.param, h, trimmed_length(h), util, steps_ahead=ahead)

    def overloaded_with(self, v: int, hosts: IntA) -> BoolA:
        """Would each host be overloaded with VM ``v`` added at the end of its list?"""
        w = self.w
        h = self.hist[hosts] + self.terms[v] / w.host_mips[hosts, None]
        util = (self.reqsum[hosts] + self.req[v]) / w.host_mips[hosts]
        ahead = self.steps_ahead(hosts, np.maximum(self.max_ram[hosts], w.vm_ram[v]))
        return overloaded(self.kind, self.param, h, trimmed_length(h), util, steps_ahead=ahead)

    # -- host lists --------------------------------------------------------------------
    def refresh(self, h: int) -> None:
        """Recompute host ``h``'s scheduler state and sums from its VM list."""
        w, vms = self.w, self.vms[h]
        total, pe = float(w.host_mips[h]), float(w.host_pe[h])
        avail, over, wsum, reqsum = total, False, 0.0, 0.0
        caps = []
        hist = np.zeros(self.hist.shape[1])
        for v in vms:
            r = float(self.req[v])
            c = pe if r > pe else r
            caps.append(c)
            if avail >= c and not over:
                avail -= c
            else:
                over, avail = True, 0.0
            wsum += c
            reqsum += r
            hist = hist + self.terms[v] / w.host_mips[h]
        alloc = 0.0
        for c in caps:
            alloc += float(np.floor(c * (total / wsum))) if over else c
        self.avail[h], self.alloc[h], self.reqsum[h], self.hist[h] = avail, alloc, reqsum, hist
        ids = np.array(vms, dtype=np.int64)
        self.ram_free[h] = w.host_ram[h] - w.vm_ram[ids].sum()
        self.bw_free[h] = w.host_bw[h] - w.vm_bw[ids].sum()
        self.max_ram[h] = w.vm_ram[ids].max() if vms else 0.0

    def destroy(self, h: int, v: int) -> None:
        self.vms[h].remove(v)
        self.refresh(h)

    def create(self, h: int, v: int) -> None:
        self.vms[h].append(v)
        self.refresh(h)

    # -- placement ---------------------------------------------------------------------
    def find_host(self, v: int, excluded: BoolA) -> int:
        """PABFD target of ``v`` (CloudSim ``findHostForVm``), -1 if none."""
        w, r = self.w, float(self.req[v])
        if w.memory_aware:
            ok = suitable(
                r, w.vm_ram[v], w.vm_bw[v], w.host_pe, self.avail, self.ram_free, self.bw_free
            )
        else:  # never short: see Datacenter.memory_aware
            ok = (w.host_pe >= r) & (self.avail >= r)
        ok &= ~excluded
        check = np.flatnonzero(ok & (self.alloc != 0))
        if check.size:
            ok[check] &= ~self.overloaded_with(v, check)
        inc = power_increase(r, self.alloc, w.host_mips, self.util_now, w.host_power)
        return choose(inc, ok)
