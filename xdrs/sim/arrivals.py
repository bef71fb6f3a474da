"""VMs that arrive during a run (outside paper mode): a VM whose first sample comes later.

At the start only the VMs with a sample in the first slot are placed (by the policy's
initial placement); a VM arrives at the first decision at or after its first sample and
is placed then by the same rule as the policy's initial placement (first fit for NPA and
DVFS, PABFD at full VM size for the others), over the hosts as they are at that moment
(full sizes of the running VMs, hosts in maintenance left out). A VM no host can take
waits and is tried again at every decision; the report counts arrivals, departures and
VMs still waiting at the end. Paper mode (a PlanetLab day) has no arrivals.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from placement.overload import FALLBACK_THRESHOLD
from placement.pabfd import choose, first_fit, power_increase, suitable
from xdrs.sim.policies import Policy
from xdrs.sim.setup import World

__all__ = ["ArrivalPlacer", "first_placement", "threshold"]

IntA = NDArray[np.int64]
BoolA = NDArray[np.bool_]


def threshold(pol: Policy) -> float | None:
    """The initial placement's rule of ``pol``: None is first fit, else PABFD skipping
    non-empty hosts a new VM alone would push over this utilisation (as Policy.initial)."""
    if pol.kind in ("npa", "dvfs"):
        return None
    return pol.param if pol.detector == "thr" else FALLBACK_THRESHOLD


def _subset(w: World, idx: IntA) -> World:
    """``w`` with only the VMs ``idx`` (every per-VM array cut the same way)."""
    return replace(
        w, vm_mips=w.vm_mips[idx], vm_ram=w.vm_ram[idx], vm_bw=w.vm_bw[idx],
        vm_type=w.vm_type[idx], samples=w.samples[idx],
        names=tuple(w.names[i] for i in idx) if w.names else (),
        present=None if w.present is None else w.present[idx],
        arrival=None if w.arrival is None else w.arrival[idx],
    )  # fmt: skip


def first_placement(pol: Policy, w: World) -> IntA:
    """(V,) the policy's initial placement of the VMs there at the start; -1 for VMs that
    arrive later."""
    if w.arrival is None or not (w.arrival > 0).any():
        return pol.initial(w)
    now = np.flatnonzero(w.arrival == 0)
    out = np.full(w.n_vms, -1, dtype=np.int64)
    if now.size:
        out[now] = pol.initial(_subset(w, now))
    return out


class ArrivalPlacer:
    """Places arriving VMs, in VM order, by ``threshold`` (None: first fit)."""

    def __init__(self, rule: float | None) -> None:
        self.rule = rule

    def __call__(self, w: World, vms: IntA, host: IntA, alive: BoolA, blocked: BoolA) -> IntA:
        """(len(vms),) host of each VM in ``vms``, -1 where none can take it.

        host, alive : (V,) the current placement and running VMs; blocked : (H,) hosts in
        maintenance (never chosen)."""
        on, n = host[alive], w.n_hosts
        alloc = np.bincount(on, w.vm_mips[alive], n).astype(np.float64)
        ram_free = w.host_ram - np.bincount(on, w.vm_ram[alive], n)
        bw_free = w.host_bw - np.bincount(on, w.vm_bw[alive], n)
        idle = np.zeros(n)
        out = np.full(vms.size, -1, dtype=np.int64)
        for i, v in enumerate(vms.tolist()):  # one placement per arriving VM
            m = float(w.vm_mips[v])
            ok = suitable(m, w.vm_ram[v], w.vm_bw[v], w.host_pe, w.host_mips - alloc, ram_free,
                          bw_free) & ~blocked  # fmt: skip
            if self.rule is None:
                d = first_fit(ok)
            else:
                ok &= ~((alloc != 0) & (m / w.host_mips > self.rule))
                d = choose(power_increase(m, alloc, w.host_mips, idle, w.host_power), ok)
            if d < 0:
                continue
            out[i] = d
            alloc[d] += m
            ram_free[d] -= w.vm_ram[v]
            bw_free[d] -= w.vm_bw[v]
        return out
