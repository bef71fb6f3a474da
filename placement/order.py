"""Order a plan into parallel waves under concurrent-migration limits.

Waves are consecutive runs of the plan's moves, so the plan's order (which the strategy
checked step by step) is kept. A move joins the open wave when its hosts still have a free
migration slot, its VM is not already moving, and its destination can hold every VM the
wave sends there while the VMs leaving still count (a live migration holds memory on both
ends until it completes). Otherwise the wave closes and the move opens the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.constraints import EPS, host_totals
from placement.plan import Plan
from placement.state import MEM, ClusterState

__all__ = ["OrderArgs", "Wave", "order_plan"]

IntA = NDArray[np.int64]


@dataclass(frozen=True)
class OrderArgs:
    """Concurrency and link model.

    per_host : concurrent migrations per host (vCenter: 8 on 10 GbE, 4 on 1 GbE).
    per_cluster : concurrent migrations per migration domain.
    link_gbps : migration link bandwidth of every host, Gbit/s.
    dirty_factor : extra fraction of memory re-sent because the guest dirties it.
    setup_s : fixed per-move overhead, seconds.
    """

    per_host: int = 8
    per_cluster: int = 32
    link_gbps: float = 10.0
    dirty_factor: float = 0.2
    setup_s: float = 2.0

    def validate(self) -> None:
        if self.per_host < 1 or self.per_cluster < 1:
            raise ValueError("per_host and per_cluster: expected >= 1")
        # 1 Mbit/s .. 10 Tbit/s: beyond either end no migration link exists, and a duration
        # computed from it overflows to inf
        if not 1e-3 <= self.link_gbps <= 1e4:
            raise ValueError(f"link_gbps: expected 0.001..10000, got {self.link_gbps}")
        if not (0 <= self.dirty_factor <= 100 and 0 <= self.setup_s <= 86400):
            raise ValueError("dirty_factor: expected 0..100, setup_s: expected 0..86400")


@dataclass(frozen=True)
class Wave:
    """Moves ``start .. stop-1`` of the plan run together for ``duration_s`` seconds."""

    start: int
    stop: int
    duration_s: float


def order_plan(plan: Plan, state: ClusterState, args: OrderArgs | None = None) -> list[Wave]:
    """Split the plan's moves into waves (see module docstring)."""
    args = OrderArgs() if args is None else args
    used = host_totals(state.alloc, state.placement, state.n_hosts)
    cap = state.alloc_cap + EPS
    waves: list[Wave] = []
    start = 0
    while start < plan.n_moves:
        stop = _wave_end(plan, state, used, cap, start, args)
        for i in range(start, stop):
            used[plan.src[i]] -= state.alloc[plan.vm[i]]
        waves.append(Wave(start, stop, _duration(plan, state, start, stop, args)))
        start = stop
    return waves


def _wave_end(
    plan: Plan,
    state: ClusterState,
    used: NDArray[np.float64],
    cap: NDArray[np.float64],
    start: int,
    args: OrderArgs,
) -> int:
    """First move that cannot join the wave starting at ``start``; adds arrivals to ``used``."""
    slots: dict[int, int] = {}
    per_dom: dict[int, int] = {}
    moving: set[int] = set()
    i = start
    while i < plan.n_moves:
        v, s, d = int(plan.vm[i]), int(plan.src[i]), int(plan.dst[i])
        dom = int(state.domain[s])
        busy = max(slots.get(s, 0), slots.get(d, 0)) >= args.per_host
        if i > start and (
            busy
            or v in moving
            or per_dom.get(dom, 0) >= args.per_cluster
            or bool((used[d] + state.alloc[v] > cap[d]).any())
        ):
            break
        used[d] += state.alloc[v]
        slots[s], slots[d] = slots.get(s, 0) + 1, slots.get(d, 0) + 1
        per_dom[dom] = per_dom.get(dom, 0) + 1
        moving.add(v)
        i += 1
    return i


def _duration(plan: Plan, state: ClusterState, start: int, stop: int, args: OrderArgs) -> float:
    """Longest move of the wave; concurrent moves on one host share its link."""
    src, dst = plan.src[start:stop], plan.dst[start:stop]
    hosts = np.r_[src, dst]
    share = np.bincount(hosts, minlength=state.n_hosts)
    sharing = np.maximum(share[src], share[dst])
    mib = state.demand[plan.vm[start:stop], MEM] * (1 + args.dirty_factor)
    mbit_s = args.link_gbps * 1000 / sharing
    return float((mib * 8.388608 / mbit_s).max() + args.setup_s)
