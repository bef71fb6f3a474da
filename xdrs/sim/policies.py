"""Policies: the paper's (NPA, DVFS, detector-selection pairs) and xdrs's own strategies.

Names: ``npa``, ``dvfs``, ``<detector>-<selection>-<parameter>`` (e.g. ``lr-mmt-1.2``,
``thr-mmt-0.8``, ``mad-rs-2.5``), ``xdrs-consolidate``, ``xdrs-balance``, ``xdrs-demand[:k=v,...]``
(:mod:`xdrs.sim.demand`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NoReturn

import numpy as np
from numpy.typing import NDArray

from placement.overload import DETECTORS, FALLBACK_THRESHOLD
from placement.pabfd import choose, first_fit, power_increase, suitable
from placement.selection import SELECTIONS, mc, mmt, mu, rs
from xdrs.sim.adapter import xdrs_decider
from xdrs.sim.demand import NAME as DEMAND
from xdrs.sim.demand import DemandError, demand_decider, parse_demand
from xdrs.sim.engine import Context, Moves
from xdrs.sim.fast import kernel_module
from xdrs.sim.planning import Planning
from xdrs.sim.setup import World

__all__ = ["PAPER_POLICIES", "Policy", "PolicyError", "parse_policy"]

IntA = NDArray[np.int64]
BoolA = NDArray[np.bool_]

PAPER_POLICIES = (
    "npa",
    "dvfs",
    "thr-mmt-0.8",
    "iqr-mmt-1.5",
    "mad-mmt-2.5",
    "lr-mmt-1.2",
    "lrr-mmt-1.2",
)


class PolicyError(ValueError):
    """Unknown or malformed policy name."""


@dataclass(frozen=True)
class Policy:
    """A parsed policy name."""

    name: str
    kind: str  # "npa", "dvfs", "migration" or "xdrs"
    detector: str = ""
    selection: str = ""
    param: float = 0.0
    strategy: str = ""

    def initial(self, world: World) -> IntA:
        """Initial placement: first fit (NPA, DVFS) or PABFD at full VM size."""
        if self.kind in ("npa", "dvfs"):
            return initial_placement(world, None)
        thr = self.param if self.detector == "thr" else FALLBACK_THRESHOLD
        return initial_placement(world, thr)

    def decider(self, seed: int) -> Callable[[Context], Moves] | None:
        if self.kind in ("npa", "dvfs"):
            return None
        if self.kind == "xdrs" and self.strategy.startswith(DEMAND):
            return demand_decider(self.strategy, seed)
        if self.kind == "xdrs":
            return xdrs_decider(self.strategy, seed)
        rng = np.random.default_rng(seed)
        return lambda ctx: optimize(ctx, self, rng)


def parse_policy(name: str) -> Policy:
    n = name.strip().lower()
    if n in ("npa", "dvfs"):
        return Policy(n, n)
    if n == DEMAND or n.startswith(DEMAND + ":"):
        try:
            parse_demand(n)
        except DemandError as e:
            raise PolicyError(str(e)) from None
        return Policy(n, "xdrs", strategy=n)
    if n in ("xdrs-consolidate", "xdrs-balance"):
        return Policy(n, "xdrs", strategy=n.split("-", 1)[1])
    parts = n.split("-")
    if len(parts) == 3 and parts[0] in DETECTORS and parts[1] in SELECTIONS:
        try:
            p = float(parts[2])
        except ValueError:
            p = -1.0
        if parts[0] == "thr" and not 0 < p <= 1:
            raise PolicyError(
                f"policy {name!r}: the THR parameter is a utilisation threshold in (0, 1], "
                f"got {parts[2]!r}"
            )
        if 0 < p < math.inf:
            return Policy(n, "migration", parts[0], parts[1], p)
    raise PolicyError(
        f"policy {name!r}: expected npa, dvfs, xdrs-consolidate, xdrs-balance, "
        f"xdrs-demand[:key=value,...] or "
        f"<detector>-<selection>-<parameter> with detector in {DETECTORS}, "
        f"selection in {SELECTIONS} and a finite parameter > 0 (e.g. lr-mmt-1.2)"
    )


def initial_placement(w: World, threshold: float | None) -> IntA:
    """Place VMs in trace order at their full size: first fit if ``threshold`` is None,
    else PABFD (skipping non-empty hosts a new VM alone would push over ``threshold``)."""
    k = kernel_module()
    if k is None:
        return initial_numpy(w, threshold)
    host = np.zeros(w.n_vms, dtype=np.int64)
    f64 = partial(np.ascontiguousarray, dtype=np.float64)
    v = k.initial(
        f64(w.vm_mips), f64(w.vm_ram), f64(w.vm_bw), f64(w.host_pe), f64(w.host_mips),
        f64(w.host_ram), f64(w.host_bw), f64(w.host_power), threshold is not None,
        math.nan if threshold is None else float(threshold), host,
    )  # fmt: skip
    if v < w.n_vms:
        _no_host(w, v)
    return host


def initial_numpy(w: World, threshold: float | None) -> IntA:
    """The reference (numpy) path of :func:`initial_placement` (``kernel.initial``)."""
    alloc = np.zeros(w.n_hosts)
    ram_free, bw_free = w.host_ram.copy(), w.host_bw.copy()
    host = np.empty(w.n_vms, dtype=np.int64)
    idle = np.zeros(w.n_hosts)
    for v in range(w.n_vms):  # one placement per VM
        m = float(w.vm_mips[v])
        ok = suitable(m, w.vm_ram[v], w.vm_bw[v], w.host_pe, w.host_mips - alloc, ram_free, bw_free)
        if threshold is None:
            d = first_fit(ok)
        else:
            ok &= ~((alloc != 0) & (m / w.host_mips > threshold))
            d = choose(power_increase(m, alloc, w.host_mips, idle, w.host_power), ok)
        if d < 0:
            _no_host(w, v)
        host[v] = d
        alloc[d] += m
        ram_free[d] -= w.vm_ram[v]
        bw_free[d] -= w.vm_bw[v]
    return host


def _no_host(w: World, v: int) -> NoReturn:
    m = float(w.vm_mips[v])
    raise PolicyError(
        f"VM {w.names[v] if w.names else v} ({m:,.0f} MHz, {w.vm_ram[v]:,.0f} MB): "
        f"no host can take it (largest host {w.host_mips.max():,.0f} MHz, "
        f"{w.host_ram.max():,.0f} MB); describe the hosts with --datacenter"
    )


def _select(p: Planning, h: int, pol: Policy, rng: np.random.Generator) -> int:
    vms = np.array(p.vms[h], dtype=np.int64)
    vms = vms[~p.ctx.in_migration[vms]]  # CloudSim's getMigratableVms
    if vms.size == 0:
        return -1
    w = p.w
    if pol.selection == "mmt":
        i = mmt(w.vm_ram[vms])
    elif pol.selection == "mu":
        i = mu(p.req[vms] / w.vm_mips[vms])
    elif pol.selection == "rs":
        i = rs(vms.size, rng)
    else:
        m = int(p.ctx.vm_hist_len[vms].min())
        i = mc(p.ctx.vm_hist[vms, :m], w.vm_ram[vms])
    return int(vms[i])


def _relieve(p: Planning, h: int, pol: Policy, rng: np.random.Generator) -> list[int]:
    """Take VMs off the overloaded host ``h`` by the selection policy until it is not
    overloaded any more (a host in maintenance: until it is empty)."""
    blocked = bool(p.ctx.blocked[h])
    if pol.selection == "mmt" and p.kernel is not None:
        return p.relieve_mmt(h, blocked)  # the same loop, compiled
    out: list[int] = []
    while True:
        v = _select(p, h, pol, rng)
        if v < 0:
            return out
        out.append(v)
        p.destroy(h, v)
        if not blocked and not p.overloaded_one(h):
            return out


def _place(
    p: Planning, vms: list[int], excluded: BoolA, all_or_none: bool, key: object
) -> list[tuple[int, int]]:
    return p.place(vms, excluded, all_or_none, key)  # a compiled loop when numba is there


def optimize(ctx: Context, pol: Policy, rng: np.random.Generator) -> Moves:
    """CloudSim 3.0.3 ``optimizeAllocation``: relieve overloaded hosts, then try to empty
    under-loaded hosts, least loaded first, all VMs or none."""
    p = Planning(ctx, (pol.detector, pol.param))
    hosts = np.arange(ctx.world.n_hosts)
    over = p.overloaded(hosts) | ctx.blocked  # hosts in maintenance are emptied first
    leaving: list[int] = []
    for h in np.flatnonzero(over).tolist():
        leaving += _relieve(p, h, pol, rng)
    moves = _place(p, leaving, over, all_or_none=False, key=("over",))
    moves += _underloaded(p, over)
    return moves


def _underloaded(p: Planning, over: BoolA) -> list[tuple[int, int]]:
    off = p.util_now == 0
    skip, excluded = over | off, over | off
    u = p.util_now
    cand = np.flatnonzero((u > 0) & (u < 1))
    order = cand[np.lexsort((cand, u[cand]))]
    if p.kernel is not None and p.underload_fits():
        return p.underload(order, skip, excluded)  # the same loop, compiled
    moves: list[tuple[int, int]] = []
    for h in order:
        if skip[h]:
            continue
        skip[h] = excluded[h] = True
        if not p.vms[h] or p.ctx.in_migration[p.vms[h]].any() or p.incoming[h]:
            continue  # CloudSim skips hosts with migrations under way
        placed = _place(p, list(p.vms[h]), excluded, all_or_none=True, key=("under", int(h)))
        for _, d in placed:
            skip[d] = True
        moves += placed
    return moves
