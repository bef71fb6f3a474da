"""Time and judge every strategy on one synthetic cluster size (runs in its own process)."""

from __future__ import annotations

import resource
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import numpy as np

import placement
from bench.timing import timed
from placement import BalanceArgs, Capacity, ClusterState, ConsolidateArgs, EvacuateArgs, Plan
from xdrs.synth import synth_cluster

__all__ = ["CASES", "measure_size"]

# label -> (strategy name, arguments); evacuation also puts MAINT_SHARE of hosts in maintenance
CASES: dict[str, tuple[str, Any]] = {
    "balance t5": ("balance", BalanceArgs(threshold=5)),
    "balance t3": ("balance", BalanceArgs(threshold=3)),
    "consolidate": ("consolidate", ConsolidateArgs()),
    "evacuate 5%": ("evacuate", EvacuateArgs()),
}
MAINT_SHARE = 0.05


@dataclass(frozen=True)
class Case:
    label: str
    name: str
    args: Any
    state: ClusterState


def max_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_size(n_hosts: int, n_vms: int, repeat: int, seed: int = 0) -> dict[str, Any]:
    """Build the cluster, then time and judge every case of :data:`CASES`."""
    rss_start = max_rss_mib()
    t0 = time.perf_counter()
    state = synth_cluster(n_hosts, n_vms, seed=seed)
    gen_s = time.perf_counter() - t0
    rss_gen = max_rss_mib()
    rows = [measure_case(case, repeat) for case in _cases(state, seed)]
    return {
        "hosts": n_hosts,
        "vms": n_vms,
        "repeat": repeat,
        "gen_s": gen_s,
        "rss_start_mib": rss_start,
        "rss_after_gen_mib": rss_gen,
        "rss_peak_mib": max_rss_mib(),
        "cases": rows,
    }


def _cases(state: ClusterState, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed + 1)
    n_maint = max(1, round(MAINT_SHARE * state.n_hosts))
    mask = np.zeros(state.n_hosts, bool)
    mask[rng.choice(state.n_hosts, size=n_maint, replace=False)] = True
    out = []
    for label, (name, args) in CASES.items():
        st = state.with_maintenance(mask) if name == "evacuate" else state
        out.append(Case(label, name, args, st))
    return out


def measure_case(case: Case, repeat: int) -> dict[str, Any]:
    """Median wall time of ``repeat`` runs, traced allocation peak of one more, and quality."""
    rss_before = max_rss_mib()
    times, plan = timed(lambda: placement.run(case.name, case.state, case.args), repeat)
    rss_growth = max_rss_mib() - rss_before
    tracemalloc.start()
    placement.run(case.name, case.state, case.args)
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "label": case.label,
        "median_s": float(np.median(times)),
        "min_s": min(times),
        "max_s": max(times),
        "traced_peak_mib": traced_peak,
        "rss_growth_mib": rss_growth,
        **quality(case.state, plan),
    }


def quality(state: ClusterState, plan: Plan) -> dict[str, Any]:
    """Metrics before and after the plan, plus its size, cost and waves."""
    before = placement.metrics(state)
    after = placement.metrics(state, plan.final_placement(state.placement))
    lb_demand = demand_bound(state, ConsolidateArgs().capacity)
    # a packing needs at least both bounds' hosts: the larger one is the valid bound
    possible = state.n_hosts - max(after.lower_bound_hosts, lb_demand)
    return {
        "before": before.as_dict(),
        "after": after.as_dict(),
        "moves": plan.n_moves,
        "moved_gib": float(plan.cost_mib.sum() / 1024),
        "waves": len(placement.order_plan(plan, state)),
        "unresolved": len(plan.unresolved),
        "empty_vs_possible_pct": 100.0 * after.hosts_empty / possible if possible else 100.0,
        "lb_demand_hosts": lb_demand,
        "notes": list(plan.notes),
    }


def demand_bound(state: ClusterState, capacity: Capacity) -> int:
    """Fewest hosts whose demand limits (``capacity``) cover the total CPU and memory demand.

    The same largest-first bound as :func:`placement.objectives.lower_bound_hosts`, but on
    measured demand against the consolidation target utilisation, which a packing that
    keeps its headroom cannot beat either.
    """
    limit = capacity.demand_cap(state)
    need = 0
    for r in range(limit.shape[1]):
        caps = np.sort(limit[:, r])[::-1]
        k = int(np.searchsorted(np.cumsum(caps), state.demand[:, r].sum())) + 1
        need = max(need, min(k, state.n_hosts))
    return need
