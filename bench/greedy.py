"""A simple, obviously correct greedy balancer, and xdrs balance compared against it.

The greedy baseline makes one move at a time: over every movable VM and every host, it
keeps the cells :func:`placement.reasons` finds feasible (allocation capacity, the demand
headroom of ``BalanceArgs``, host flags, domain, rules), computes the exact objective after
each move (weighted CPU and memory load standard deviations over ``host_ok`` hosts) and
applies the best one. After each move it recomputes the objective from scratch and checks it
against the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

import placement
from placement import BalanceArgs, Capacity, ClusterState

__all__ = ["CompareRow", "GreedyTrace", "compare", "greedy", "plot"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]

WEIGHTS = (0.5, 0.5)
BUDGETS = (1, 2, 5, 10, 20, 50, 100, 200, 400)


@dataclass(frozen=True)
class GreedyTrace:
    """Objective after 0, 1, ... moves (index = number of moves made)."""

    imbalance: FloatA
    cpu_sd: FloatA
    placements: list[IntA]


def greedy(state: ClusterState, k: int, capacity: Capacity | None = None) -> GreedyTrace:
    """Make up to ``k`` best single moves; stop early when no move lowers the objective."""
    cap = BalanceArgs().capacity if capacity is None else capacity
    place = state.placement.copy()
    movable = np.flatnonzero(~state.pinned)
    imb, sd, places = [_objective(state, place)], [_cpu_sd(state, place)], [place.copy()]
    for _ in range(k):
        best = _best_move(state, place, movable, cap)
        if best is None or best[2] >= imb[-1] - 1e-12:
            break
        v, d, predicted = best
        place[v] = d
        imb.append(_objective(state, place))
        if abs(imb[-1] - predicted) > 1e-7:
            raise AssertionError(f"greedy: predicted {predicted}, recomputed {imb[-1]}")
        sd.append(_cpu_sd(state, place))
        places.append(place.copy())
    return GreedyTrace(np.array(imb), np.array(sd), places)


def _objective(state: ClusterState, place: IntA) -> float:
    return placement.imbalance(placement.host_loads(state, place), WEIGHTS, state.host_ok)


def _cpu_sd(state: ClusterState, place: IntA) -> float:
    return float(placement.host_loads(state, place)[state.host_ok, 0].std())


def _best_move(
    state: ClusterState, place: IntA, vms: IntA, cap: Capacity
) -> tuple[int, int, float] | None:
    """(VM, host, objective after) of the best feasible single move, or None."""
    feasible = placement.reasons(state, vms, place, cap) == 0
    if not feasible.any():
        return None
    after = _objective_after(state, place, vms)
    after[~feasible] = np.inf
    i, d = np.unravel_index(int(np.argmin(after)), after.shape)
    return int(vms[i]), int(d), float(after[i, d])


def _objective_after(state: ClusterState, place: IntA, vms: IntA) -> FloatA:
    """(n, H): the objective if VM ``vms[i]`` moved to host ``h``, every cell exact."""
    live = state.host_ok.astype(np.float64)
    n = max(live.sum(), 1.0)
    loads = placement.host_loads(state, place)
    src = place[vms]
    out = np.zeros((len(vms), state.n_hosts))
    for k, w in enumerate(WEIGHTS):
        lk = loads[:, k]
        s, q = (lk * live).sum(), (lk * lk * live).sum()
        a = state.demand[vms, k] / state.phys[src, k]
        b = state.demand[vms, k, None] / state.phys[None, :, k]
        ls, ld, ls_live = lk[src], lk[None, :], live[src]
        s2 = s - a * ls_live
        q2 = q + ls_live * ((ls - a) ** 2 - ls**2)
        s2 = s2[:, None] + b * live[None, :]
        q2 = q2[:, None] + live[None, :] * ((ld + b) ** 2 - ld**2)
        out += w * np.sqrt(np.maximum(q2 / n - (s2 / n) ** 2, 0.0))
    return out


@dataclass(frozen=True)
class CompareRow:
    budget: int
    xdrs_moves: int
    xdrs_imbalance: float
    xdrs_cpu_sd: float
    greedy_moves: int
    greedy_imbalance: float
    greedy_cpu_sd: float
    greedy_same_moves_imbalance: float

    @property
    def xdrs_not_worse(self) -> bool:
        """xdrs at budget ``k`` is no worse than the greedy's ``k`` moves."""
        return self.xdrs_imbalance <= self.greedy_imbalance + 1e-12

    @property
    def xdrs_not_worse_same_moves(self) -> bool:
        """xdrs is no worse than the greedy given as many moves as xdrs actually made
        (xdrs adds mandatory moves, e.g. maintenance or rule fixes, outside the budget)."""
        return self.xdrs_imbalance <= self.greedy_same_moves_imbalance + 1e-12


def compare(
    state: ClusterState, budgets: tuple[int, ...] = BUDGETS
) -> tuple[list[CompareRow], GreedyTrace]:
    """xdrs balance (threshold 5, ``max_moves=k``) against the greedy's first ``k`` moves."""
    plans = [
        placement.run("balance", state, BalanceArgs(threshold=5, max_moves=k)) for k in budgets
    ]
    trace = greedy(state, max(*budgets, *(p.n_moves for p in plans)))
    last = len(trace.imbalance) - 1
    rows = []
    for k, plan in zip(budgets, plans, strict=True):
        final = plan.final_placement(state.placement)
        g = min(k, last)
        rows.append(
            CompareRow(
                k,
                plan.n_moves,
                _objective(state, final),
                _cpu_sd(state, final),
                g,
                float(trace.imbalance[g]),
                float(trace.cpu_sd[g]),
                float(trace.imbalance[min(plan.n_moves, last)]),
            )
        )
    return rows, trace


def plot(rows: list[CompareRow], trace: GreedyTrace, path: str, title: str) -> None:
    """Imbalance and CPU load sd against moves: greedy trajectory and xdrs budget points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(len(trace.imbalance))
    ax.plot(x[1:], trace.imbalance[1:], color="tab:gray", label="greedy: imbalance")
    ax.plot(x[1:], trace.cpu_sd[1:], color="tab:gray", ls="--", label="greedy: cpu_load_sd")
    xm = [max(r.xdrs_moves, 1) for r in rows]
    ax.plot(xm, [r.xdrs_imbalance for r in rows], "o-", color="tab:blue", label="xdrs: imbalance")
    ax.plot(xm, [r.xdrs_cpu_sd for r in rows], "s--", color="tab:blue", label="xdrs: cpu_load_sd")
    ax.set_xscale("log")
    ax.set_xlabel("moves")
    ax.set_ylabel("standard deviation of host load")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
