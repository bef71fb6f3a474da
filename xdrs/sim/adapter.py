"""xdrs's own strategies (``placement.run``) as simulator policies.

At each decision the simulated data centre becomes a :class:`placement.ClusterState`:
CPU in MIPS (capacity = host MIPS, demand = requested MIPS, allocation = VM MIPS), memory
in MB, disk a nominal 1 GB per VM; host power curves go in ``power``. The strategy's plan
becomes the migrations of the step; moves to the VM's own host are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from placement import make_state, run
from placement.state import ClusterState
from xdrs.sim.engine import Context, Moves

__all__ = ["cluster_state", "xdrs_decider"]

OVERCOMMIT = 100.0  # CPU allocation is never the limit: CloudSim over-subscribes freely


def cluster_state(ctx: Context) -> tuple[ClusterState, np.ndarray]:
    """The running VMs of ``ctx`` as a ClusterState, and their simulator VM indices."""
    w = ctx.world
    vms = np.flatnonzero(ctx.alive)
    disk = np.full(vms.size, 1.0)
    phys = np.column_stack([w.host_mips, w.host_ram, np.full(w.n_hosts, 1e6)])
    cap = phys * np.array([OVERCOMMIT, 1.0, 1.0])
    alloc = np.column_stack([w.vm_mips[vms], w.vm_ram[vms], disk])
    demand = np.column_stack([ctx.req[vms], w.vm_ram[vms], disk])
    st = make_state(
        [f"h{i}" for i in range(w.n_hosts)],
        [f"v{i}" for i in vms],
        phys,
        alloc,
        demand,
        ctx.host[vms],
        alloc_cap=cap,
        maintenance=ctx.blocked,
        pinned=ctx.in_migration[vms],
        power=w.host_power,
    )
    return st, vms


def xdrs_decider(strategy: str, seed: int) -> Callable[[Context], Moves]:
    """A policy running ``placement.run(strategy, ...)`` at every decision."""

    def decide(ctx: Context) -> Moves:
        st, vms = cluster_state(ctx)
        plan = run(strategy, st, seed=seed + ctx.step)
        final = plan.final_placement(st.placement)
        moved = np.flatnonzero(final != st.placement)
        return [(int(vms[i]), int(final[i])) for i in moved]

    return decide
