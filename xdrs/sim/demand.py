"""xdrs-demand: pack by a forecast of each VM's demand, re-plan now and then, react between.

Every ``period`` decisions the policy re-plans with the placement core's ``consolidate`` on a
:class:`placement.ClusterState` whose CPU allocation is each VM's forecast demand (the ``q``
quantile of its last ``window`` utilisation samples, :func:`xdrs.sim.forecast.window_quantile`
-- the forecaster the backtest in ``bench/forecast.py`` chose) and whose host capacity is
``target`` x the host's MIPS: hosts whose forecast exceeds that shed VMs first, then whole
hosts are emptied onto the others, at most ``budget`` migrations per re-plan (the first
re-plan, which undoes the paper's initial placement at full VM size, may have its own
``first`` budget). Between re-plans only real overloads get an answer: on each host whose
measured demand exceeds ``react`` x its MIPS the core's ``shed_overload`` moves the fewest
VMs (largest first) to hosts with room in both forecast and measured demand; a host put into
maintenance (``simulate --maintenance``) is emptied at once by the core's ``remediate``.

The simulated data centre follows CloudSim 3.0.3, where memory is checked only when a VM is
created, so placement is CPU-only: the state's memory column carries the CPU figures too
(the core's memory-keyed choices then rank by CPU) and disk is a nominal 1 per VM.

Names: ``xdrs-demand`` or ``xdrs-demand:key=value,...`` with the keys of :class:`DemandArgs`
(e.g. ``xdrs-demand:period=12,budget=40,target=0.8``). The defaults are the setting
``bench/sim_demand.py`` reports day by day (see bench/RESULTS-sim.md for the sweep).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from placement import Capacity, ConsolidateArgs, make_state, run
from placement.plan import Plan, Reason
from placement.state import ClusterState
from placement.strategies.remediate import remediate, shed_overload
from placement.workspace import Workspace
from xdrs.sim.engine import Context, Moves
from xdrs.sim.forecast import window_quantile

__all__ = ["NAME", "DemandArgs", "DemandError", "DemandPolicy", "demand_decider", "parse_demand"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]
NAME = "xdrs-demand"
BIG = 1e12  # a capacity that never binds (disk)


class DemandError(ValueError):
    """A malformed ``xdrs-demand`` name; the message names the setting."""


@dataclass(frozen=True)
class DemandArgs:
    """Settings of the demand-aware policy.

    period : re-plan every ``period`` decisions (1 = every decision)
    budget : migrations per re-plan, mandatory moves included
    first : budget of the first re-plan (-1: no limit)
    q : forecast quantile of each VM's demand, in (0, 1]
    window : samples the forecast looks back over (5 min each on PlanetLab)
    target : planned host utilisation: forecast demand <= target x MIPS, in (0, 1]
    react : between re-plans, hosts whose measured demand exceeds react x MIPS shed VMs
    """

    period: int = 24
    budget: int = 80
    first: int = -1
    q: float = 0.95
    window: int = 72
    target: float = 0.9
    react: float = 1.0

    def validate(self) -> None:
        ints = {"period": (1, 10_000), "budget": (0, 10**7), "first": (-1, 10**7),
                "window": (1, 10_000)}  # fmt: skip
        for k, (lo, hi) in ints.items():
            v = getattr(self, k)
            if not lo <= v <= hi:
                raise DemandError(f"{NAME}: {k} must be an integer in {lo}..{hi}, got {v}")
        for k in ("q", "target", "react"):
            v = getattr(self, k)
            if not (math.isfinite(v) and 0 < v <= 1):
                raise DemandError(f"{NAME}: {k} must be a number in (0, 1], got {v}")


def parse_demand(name: str) -> DemandArgs:
    """``xdrs-demand[:key=value,...]`` -> validated :class:`DemandArgs`."""
    head, _, tail = name.partition(":")
    if head != NAME:
        raise DemandError(f"policy {name!r}: expected {NAME}[:key=value,...]")
    types = {f.name: f.type for f in fields(DemandArgs)}
    kw: dict[str, Any] = {}
    for item in filter(None, tail.split(",")):
        key, eq, raw = item.partition("=")
        if not eq or key not in types:
            raise DemandError(
                f"policy {name!r}: expected key=value with key in {sorted(types)}, got {item!r}"
            )
        try:
            value: float = int(raw) if types[key] in ("int", int) else float(raw)
        except ValueError:
            raise DemandError(f"policy {name!r}: {key}={raw!r} is not a number") from None
        kw[key] = value
    args = DemandArgs(**kw)
    args.validate()
    return args


class DemandPolicy:
    """The decider: ``policy(ctx) -> moves``. Keeps the utilisation samples it has seen
    (the forecast uses the past only) and counts decisions to know when to re-plan."""

    def __init__(self, args: DemandArgs, seed: int = 0) -> None:
        args.validate()
        self.args, self.seed = args, seed
        self.hist = np.empty((0, args.window))  # (V, window), newest in column ``pos``
        self.pos = -1
        self.plans = 0
        self.last_plan: Plan | None = None  # for tests and reports
        self.last_state: ClusterState | None = None

    def __call__(self, ctx: Context) -> Moves:
        w = ctx.world
        if self.pos < 0:
            self.hist = np.full((w.n_vms, self.args.window), np.nan)
        self.pos = (self.pos + 1) % self.args.window
        self.hist[:, self.pos] = ctx.req / w.vm_mips
        vms = np.flatnonzero(ctx.alive)
        fc = window_quantile(self.hist[vms], self.args.q) * w.vm_mips[vms]
        st = self.state(ctx, vms, fc)
        replan = (ctx.step - 1) % self.args.period == 0
        plan = self.replan(st, ctx.step) if replan else self.react(st)
        self.last_plan, self.last_state = plan, st
        final = plan.final_placement(st.placement)
        moved = np.flatnonzero(final != st.placement)
        return [(int(vms[i]), int(final[i])) for i in moved]

    def state(self, ctx: Context, vms: IntA, forecast: FloatA) -> ClusterState:
        """The running VMs as a CPU-only ClusterState: allocation = forecast demand."""
        w, a = ctx.world, self.args
        one = np.ones(vms.size)
        mips = w.host_mips
        return make_state(
            _ids("h", w.n_hosts),
            _ids("v", vms.size),
            np.column_stack([mips, mips, np.full(w.n_hosts, BIG)]),
            np.column_stack([forecast, forecast, one]),
            np.column_stack([ctx.req[vms], ctx.req[vms], one]),
            ctx.host[vms],
            alloc_cap=np.column_stack([mips * a.target, mips * a.target, np.full(w.n_hosts, BIG)]),
            maintenance=ctx.blocked,
            pinned=ctx.in_migration[vms],
            power=w.host_power,
        )

    def replan(self, st: ClusterState, step: int) -> Plan:
        """Consolidate by forecast within the budget (mandatory moves first)."""
        a = self.args
        budget = a.budget
        if self.plans == 0:  # the first plan undoes the initial placement at full size
            budget = st.n_vms if a.first < 0 else a.first
        self.plans += 1
        cap = Capacity(a.react, a.react)
        plan = run("consolidate", st, ConsolidateArgs(cap, budget), seed=self.seed + step)
        return within_budget(plan, st, budget)

    def react(self, st: ClusterState) -> Plan:
        """Move the fewest VMs off hosts whose measured demand is above ``react`` (and every
        VM off a host gone into maintenance, which cannot wait for the next re-plan)."""
        ws = Workspace(st, Capacity(self.args.react, self.args.react))
        if st.maintenance[st.placement].any():
            remediate(ws, pack=True)
        shed_overload(ws, pack=True)
        return ws.to_plan("react", 0.0, 0.0)


def within_budget(plan: Plan, st: ClusterState, budget: int) -> Plan:
    """The first ``budget`` moves of ``plan`` (each was checked against the state its
    predecessors left, so a prefix is feasible), without the consolidation moves off hosts
    the prefix does not empty (they would save no host; consolidation's targets only
    receive, so dropping them frees room and keeps the rest feasible)."""
    keep = np.arange(plan.n_moves) < budget
    left = np.bincount(_final(plan, st, keep), minlength=st.n_hosts)
    keep &= ~((plan.reason == int(Reason.CONSOLIDATION)) & (left[plan.src] > 0))
    return _take(plan, keep)


def _final(plan: Plan, st: ClusterState, keep: NDArray[np.bool_]) -> IntA:
    out = st.placement.copy()
    out[plan.vm[keep]] = plan.dst[keep]  # later moves of a VM overwrite earlier ones
    return out


def _take(plan: Plan, keep: NDArray[np.bool_]) -> Plan:
    return replace(
        plan,
        vm=plan.vm[keep],
        src=plan.src[keep],
        dst=plan.dst[keep],
        reason=plan.reason[keep],
        gain=plan.gain[keep],
        cost_mib=plan.cost_mib[keep],
    )


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def demand_decider(name: str, seed: int) -> Callable[[Context], Moves]:
    """A fresh :class:`DemandPolicy` for the policy ``name``."""
    return DemandPolicy(parse_demand(name), seed)
