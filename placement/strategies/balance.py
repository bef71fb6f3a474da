"""Balance: DRS-style load balancing by rounds of matched moves.

Each round pairs, inside every migration domain, loaded hosts with light ones (the r-th
most loaded with the r-th least loaded, plus every pair among the few extremes), scores
every VM on a sender for its partner (exact change of the weighted sum of squared load
deviations), keeps the best feasible VM per pair and then a matching (each host in at most
one move per round), best gains first. Moves of one round touch disjoint hosts, so each was
checked against the state it runs in. Rounds repeat until no move clears the migration
threshold's cost-benefit bar, the imbalance target is met, or the move budget is spent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.constraints import EPS, Capacity
from placement.objectives import imbalance
from placement.plan import Plan, Reason
from placement.state import MEM, ClusterState
from placement.strategies.remediate import remediate
from placement.workspace import Workspace

__all__ = ["BalanceArgs", "balance"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]

# migration threshold -> (imbalance target, minimum gain of a move). A move's gain is the drop
# of the objective times the number of hosts, so the bar does not depend on cluster size.
THRESHOLDS: dict[int, tuple[float, float]] = {
    1: (np.inf, np.inf),
    2: (0.15, 0.025),
    3: (0.08, 5e-3),
    4: (0.03, 1e-3),
    5: (0.0, 1e-6),
}
EXTREMES = 8  # every pair among the EXTREMES most and least loaded hosts of a domain is scored
MAX_ROUNDS = 1000
# a round applies at most 1/ROUND_SHARE of the budget left or of the hosts: smaller rounds
# follow the best-move-first order more closely (fewer, better moves), larger ones are faster
ROUND_SHARE = 16
DENSE_CELLS = 100_000  # V x H up to which every sender-receiver pair is scored
SOFT_PENALTY = 0.5  # gain units: about one good balancing move at 100 hosts


@dataclass(frozen=True)
class BalanceArgs:
    """Arguments of :func:`balance`.

    threshold : int 1..5
        Like DRS: 1 applies only mandatory moves, 5 is the most aggressive.
    max_moves : int or None
        Budget of optional moves (mandatory moves are never cut).
    weights : (cpu, memory) weights of the imbalance objective.
    capacity : demand headroom a destination must keep.
    cost_gib : float
        Cost-benefit scale: a move of ``m`` GiB needs ``min_gain * (1 + m / cost_gib)``.
    """

    threshold: int = 3
    max_moves: int | None = None
    weights: tuple[float, float] = (0.5, 0.5)
    capacity: Capacity = Capacity(0.9, 0.95)
    cost_gib: float = 16.0

    def validate(self) -> None:
        if self.threshold not in THRESHOLDS:
            raise ValueError(f"threshold: expected 1..5, got {self.threshold}")
        if self.max_moves is not None and self.max_moves < 0:
            raise ValueError(f"max_moves: expected >= 0, got {self.max_moves}")
        if min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError(
                f"weights: expected non-negative with a positive sum, got {self.weights}"
            )
        if self.cost_gib <= 0:
            raise ValueError(f"cost_gib: expected > 0, got {self.cost_gib}")
        self.capacity.validate()


def balance(state: ClusterState, args: BalanceArgs, *, rng: np.random.Generator) -> Plan:
    """Mandatory moves, then rounds of matched balancing moves."""
    del rng  # deterministic
    ws = Workspace(state, args.capacity)
    live = state.host_ok
    before = imbalance(ws.loads(), args.weights, live)
    unresolved, notes = remediate(ws)
    target, min_gain = THRESHOLDS[args.threshold]
    budget = np.inf if args.max_moves is None else args.max_moves
    start = ws.n_moves
    after = imbalance(ws.loads(), args.weights, live)
    # dense: every sender with every receiver of its domain, while that stays small
    extremes = state.n_hosts if state.n_vms * state.n_hosts <= DENSE_CELLS else EXTREMES
    for _ in range(MAX_ROUNDS):
        left = budget - (ws.n_moves - start)
        if left <= 0 or (after <= target and not _overloaded(ws).any()):
            break
        # under a budget, fewer moves per round track the best-move-first order closely
        per_round = max(1, int(min(left, state.n_hosts)) // ROUND_SHARE)
        mark = ws.n_moves
        if not _round(ws, args, min_gain, int(per_round), extremes):
            break
        now = imbalance(ws.loads(), args.weights, live)
        if now > after and ws.n_moves - mark > 1:
            # moves scored one by one interfered; keep only the best, which is exact
            ws.undo(mark)
            _round(ws, args, min_gain, 1, extremes)
            now = imbalance(ws.loads(), args.weights, live)
        after = now
    if args.threshold > 1 and (over := int(_overloaded(ws).sum())):
        notes.append(f"{over} hosts stay above the demand target: no move clears it")
    return ws.to_plan("balance", before, after, None, unresolved, tuple(notes))


def _overloaded(ws: Workspace) -> NDArray[np.bool_]:
    over: NDArray[np.bool_] = (ws.dem > ws.dcap).any(axis=1) & ws.ok
    return over


def _round(ws: Workspace, args: BalanceArgs, min_gain: float, budget: int, extremes: int) -> bool:
    ps, pd = _pairs(ws, args.weights, extremes)
    if ps.size == 0:
        return False
    cell_pair, cell_vm = _cells(ws, ps)
    gain = _gains(ws, args.weights, cell_vm, ps[cell_pair], pd[cell_pair])
    gain -= _soft_penalty(ws, cell_vm, ps[cell_pair], pd[cell_pair])
    mib = ws.state.demand[cell_vm, MEM]
    keep = np.flatnonzero(gain >= min_gain * (1 + mib / 1024 / args.cost_gib))
    # the capacity and rule check runs only on cells that clear the cost-benefit bar
    keep = keep[_fits(ws, cell_vm[keep], pd[cell_pair[keep]])]
    if not keep.size:
        return False
    cell_pair, cell_vm, gain = cell_pair[keep], cell_vm[keep], gain[keep]
    sel = _match(ps[cell_pair], pd[cell_pair], gain)
    sel = sel[np.argsort(-gain[sel], kind="stable")][:budget]
    src = ps[cell_pair[sel]]
    overloaded = (ws.dem[src] > ws.dcap[src]).any(axis=1)
    reasons = np.where(overloaded, Reason.OVERLOAD, Reason.IMBALANCE).astype(np.int64)
    ws.move_many(cell_vm[sel], pd[cell_pair[sel]], reasons, gain[sel] / max(int(ws.ok.sum()), 1))
    return True


def _pairs(ws: Workspace, weights: tuple[float, float], extremes: int) -> tuple[IntA, IntA]:
    """(sender, receiver) host pairs inside each domain."""
    st = ws.state
    hosts = np.flatnonzero(ws.ok)
    score = ws.loads()[hosts] @ np.asarray(weights)
    order = hosts[np.lexsort((-score, st.domain[hosts]))]
    dom = st.domain[order]
    first = np.r_[0, np.flatnonzero(dom[1:] != dom[:-1]) + 1]
    size = np.diff(np.r_[first, len(order)])
    start = np.repeat(first, size)
    rank = np.arange(len(order)) - start
    n = np.repeat(size, size)
    send = rank < n // 2
    ps = order[send]
    pd = order[(start + n - 1 - rank)[send]]
    ext = rank < np.minimum(n // 2, extremes)
    # receivers: the lightest hosts of the bottom half (which includes an odd middle host)
    ek = np.minimum(n - n // 2, extremes)[ext]
    es, ed = order[ext], start[ext] + n[ext] - 1
    # every extreme sender with every extreme receiver of its domain (aligned pair excluded)
    rep = np.repeat(np.arange(len(es)), ek)
    off = np.arange(len(rep)) - np.repeat(np.cumsum(ek) - ek, ek)
    cs, cd = es[rep], order[ed[rep] - off]
    diag = off == rank[ext][rep]
    return np.r_[ps, cs[~diag]], np.r_[pd, cd[~diag]]


def _cells(ws: Workspace, ps: IntA) -> tuple[IntA, IntA]:
    """(pair index, VM index) for every movable VM on each pair's sender."""
    st = ws.state
    on_sender = np.flatnonzero(np.isin(ws.place, ps))
    by_host = on_sender[np.argsort(ws.place[on_sender], kind="stable")]
    count = np.bincount(ws.place[on_sender], minlength=st.n_hosts)
    begin = np.cumsum(count) - count
    reps = count[ps]
    cell_pair = np.repeat(np.arange(len(ps)), reps)
    within = np.arange(len(cell_pair)) - np.repeat(np.cumsum(reps) - reps, reps)
    cell_vm = by_host[begin[ps][cell_pair] + within]
    movable = ~st.pinned[cell_vm]
    return cell_pair[movable], cell_vm[movable]


def _gains(ws: Workspace, weights: tuple[float, float], vm: IntA, src: IntA, dst: IntA) -> FloatA:
    """Exact drop of the objective (weighted load standard deviations) for each move alone,
    times the number of hosts."""
    st = ws.state
    live = ws.ok
    n = max(int(live.sum()), 1)
    loads = ws.loads()
    phys = np.maximum(st.phys[:, :2], EPS)
    total = np.zeros(len(vm))
    for k in (0, 1):
        lk = loads[:, k]
        s, q = lk[live].sum(), (lk[live] ** 2).sum()
        a = st.demand[vm, k] / phys[src, k]
        b = st.demand[vm, k] / phys[dst, k]
        dq = a * a - 2 * a * lk[src] + b * b + 2 * b * lk[dst]
        var_after = (q + dq) / n - ((s + b - a) / n) ** 2
        sd_now = np.sqrt(max(q / n - (s / n) ** 2, 0.0))
        total += weights[k] * (sd_now - np.sqrt(np.maximum(var_after, 0.0)))
    return total * n


def _soft_penalty(ws: Workspace, vm: IntA, src: IntA, dst: IntA) -> FloatA:
    """SOFT_PENALTY per should/should-not rule a move breaks, minus per rule it mends."""
    out = np.zeros(len(vm))
    cons = np.flatnonzero(ws.constrained[vm])
    if cons.size and ws.state.rules.vh_vm.size:
        uniq, inv = np.unique(vm[cons], return_inverse=True)
        soft = ws.state.rules.soft_violations(uniq, ws.state.n_hosts)
        out[cons] = SOFT_PENALTY * (soft[inv, dst[cons]] - soft[inv, src[cons]])
    return out


def _fits(ws: Workspace, vm: IntA, dst: IntA) -> NDArray[np.bool_]:
    st = ws.state
    ok = np.ones(len(vm), bool)
    for r in range(3):  # column by column: much cheaper than .all(axis=1) on (n, 3)
        ok &= ws.used[dst, r] + st.alloc[vm, r] <= ws.cap[dst, r]
    for r in range(2):
        ok &= ws.dem[dst, r] + st.demand[vm, r] <= ws.dcap[dst, r]
    cons = np.flatnonzero(ws.constrained[vm])
    if cons.size:
        uniq, inv = np.unique(vm[cons], return_inverse=True)
        ok[cons] &= ws.rule_ok(uniq)[inv, dst[cons]]
    return ok


def _match(src: IntA, dst: IntA, gain: FloatA) -> IntA:
    """Indices of a greedy matching by gain: each host used once, best gains first."""
    order = np.argsort(-gain, kind="stable")
    _, first_s = np.unique(src[order], return_index=True)
    order = order[np.sort(first_s)]
    _, first_d = np.unique(dst[order], return_index=True)
    return order[np.sort(first_d)]
