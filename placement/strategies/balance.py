"""Balance: DRS-style load balancing by rounds of matched moves, and single best moves
under a move budget.

Each round pairs, inside every migration domain, loaded hosts with light ones (the r-th
most loaded with the r-th least loaded, plus every pair among the few extremes), scores
every VM on a sender for its partner (exact change of the weighted sum of squared load
deviations), keeps the best feasible VM per pair and then a matching (each host in at most
one move per round), best gains first. Moves of one round touch disjoint hosts, so each was
checked against the state it runs in. A round scores the aligned pairs only down to a few
times the moves it may take, until rounds come out less than half full (the tail). Rounds
repeat until no move clears the migration threshold's cost-benefit bar, the imbalance
target is met, the move budget is spent, or the rounds stall (the last STALL_ROUNDS
together improved the objective by less than STALL of it: diminishing returns, not worth
more migrations).

Under a budget, the last PRECISE_MAX moves are single best moves instead (the order of a
greedy one-best-move-at-a-time balancer, which a round's matching does not follow): the
candidates are every VM on the most loaded hosts along several directions of the (CPU,
memory) load plane, with the lightest hosts of each host size class; every pick rescores
all of them on the current loads, the set is rebuilt every EPOCH moves and widened once it
has no improving move left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from placement.constraints import Capacity
from placement.plan import Plan, Reason
from placement.state import MEM, ClusterState
from placement.strategies.candidates import Scorer, cells, fits, gains, pairs, soft_penalty
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
ALIGNED_SHARE = 4  # aligned pairs scored per move a round may take (until the tail)
TAIL_FILL = 0.5  # a round less full than this starts the tail: every aligned pair scored
# rounds stop when the last STALL_ROUNDS improved the objective by less than STALL of it
STALL_ROUNDS = 4
STALL = 0.01
DENSE_CELLS = 100_000  # V x H up to which every sender-receiver pair is scored
# under a move budget: single best moves (greedy quality) over a wider candidate set,
# refreshed every EPOCH moves
PRECISE_EXTREMES = 32
EPOCH = 8
WIDEST = 512  # extremes the precise search widens to before it stops
PRECISE_MAX = 1024  # the last moves of a budget that are chosen one by one
CELL_CAP = 500_000  # candidate cells beyond which the precise search does not widen
PICK_CELLS = 16384  # cells an epoch of the precise search rescores at each pick


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
    """Mandatory moves, then balancing moves (see the module docstring)."""
    del rng  # deterministic
    ws = Workspace(state, args.capacity)
    before = ws.imbalance(args.weights)
    unresolved, notes = remediate(ws)
    budget = np.inf if args.max_moves is None else args.max_moves
    after = _optional_moves(ws, args, ws.imbalance(args.weights), budget)
    if args.threshold > 1 and (over := int(_overloaded(ws).sum())):
        notes.append(f"{over} hosts stay above the demand target: no move clears it")
    return ws.to_plan("balance", before, after, None, unresolved, tuple(notes))


@dataclass
class _Run:
    """The state of one balancing loop (see :func:`_optional_moves`)."""

    ws: Workspace
    args: BalanceArgs
    bar: FloatA  # (V,) the cost-benefit bar of moving each VM
    dense: bool
    wide: int  # extremes of the precise search
    batched: bool = True
    tail: bool = False  # rounds score every aligned pair
    history: list[float] = field(default_factory=list)  # objective after each round


def _optional_moves(ws: Workspace, args: BalanceArgs, after: float, budget: float) -> float:
    """Balancing moves until the target, the budget or the bar stops them: matched rounds,
    and for the last PRECISE_MAX moves of a budget, single best moves. Returns the
    objective after them."""
    st = ws.state
    target, min_gain = THRESHOLDS[args.threshold]
    # dense: every sender with every receiver of its domain, while that stays small
    dense = st.n_vms * st.n_hosts <= DENSE_CELLS
    # a move of m GiB needs a gain of min_gain * (1 + m / cost_gib)
    bar = min_gain * (1 + st.demand[:, MEM] / 1024 / args.cost_gib)
    run = _Run(ws, args, bar, dense, st.n_hosts if dense else PRECISE_EXTREMES)
    run.history.append(after)
    start = ws.n_moves
    for _ in range(MAX_ROUNDS):
        left = budget - (ws.n_moves - start)
        if left <= 0 or (after <= target and not _overloaded(ws).any()):
            break
        run.batched &= left > PRECISE_MAX
        if run.batched and not _batched_step(run, left):
            if budget == np.inf:
                break
            run.batched = False  # under a budget the precise search may still find moves
            continue
        if not run.batched and not _precise_step(run, left):
            break
        after = run.history[-1]
    return after


def _precise_step(run: _Run, left: float) -> bool:
    """One epoch of single best moves; widens the candidates once before giving up."""
    st = run.ws.state
    made = _precise(run.ws, run.args, run.bar, int(min(left, EPOCH)), run.wide)
    if made < 0 or (made == 0 and run.wide >= min(st.n_hosts, WIDEST)):
        return False
    if made == 0:
        run.wide *= 4  # nothing left among the extremes: look wider before stopping
    run.history.append(run.ws.imbalance(run.args.weights))
    return True


def _batched_step(run: _Run, left: float) -> bool:
    """One round of matched moves; False when none is found or the rounds stall (the last
    STALL_ROUNDS improved the objective by less than STALL of it)."""
    ws, args, st = run.ws, run.args, run.ws.state
    hist = run.history
    if len(hist) > STALL_ROUNDS and hist[-1 - STALL_ROUNDS] - hist[-1] < STALL * hist[-1]:
        return False
    per_round = max(1, int(min(left - PRECISE_MAX, st.n_hosts)) // ROUND_SHARE)
    extremes, mark = st.n_hosts if run.dense else EXTREMES, ws.n_moves
    # the moves past a round's best are not taken: score aligned pairs only down to
    # ALIGNED_SHARE times the round's moves, until rounds come out less than TAIL_FILL full
    limit = None if run.tail else ALIGNED_SHARE * per_round
    found = _round(ws, args, run.bar, per_round, extremes, limit)
    run.tail |= ws.n_moves - mark < per_round * TAIL_FILL
    if not found and limit is not None:
        found = _round(ws, args, run.bar, per_round, extremes, None)
    if not found:
        return False
    now = ws.imbalance(args.weights)
    if ws.n_moves - mark > 1 and now > hist[-1]:
        # moves scored one by one interfered; keep only the best, which is exact
        ws.undo(mark)
        _round(ws, args, run.bar, 1, extremes, None)
        now = ws.imbalance(args.weights)
    hist.append(now)
    return True


def _overloaded(ws: Workspace) -> NDArray[np.bool_]:
    over: NDArray[np.bool_] = (ws.dem > ws.dcap).any(axis=1) & ws.ok
    return over


def _round(
    ws: Workspace, args: BalanceArgs, bar: FloatA, budget: int, extremes: int, limit: int | None
) -> bool:
    """One round of at most ``budget`` matched moves, aligned pairs down to rank ``limit``."""
    ps, pd = pairs(ws, args.weights, extremes, limit=limit)
    if ps.size == 0:
        return False
    cell_pair, cell_vm = cells(ws, ps)
    src, dst = ps[cell_pair], pd[cell_pair]
    gain = gains(ws, args.weights, cell_vm, src, dst)
    # soft rules weigh in, but a move must lower the imbalance itself: balance never
    # trades load balance for a should-rule
    improves = gain > 0
    if ws.constrained.any():
        gain -= soft_penalty(ws, cell_vm, src, dst)
    keep = np.flatnonzero((gain >= bar[cell_vm]) & improves)
    keep = _feasible_best(ws, cell_pair, cell_vm, dst, gain, keep)
    if not keep.size:
        return False
    src, dst, cell_vm, gain = src[keep], dst[keep], cell_vm[keep], gain[keep]
    sel = _match(src, dst, gain)
    sel = sel[np.argsort(-gain[sel], kind="stable")][:budget]
    overloaded = (ws.dem[src[sel]] > ws.dcap[src[sel]]).any(axis=1)
    reasons = np.where(overloaded, Reason.OVERLOAD, Reason.IMBALANCE).astype(np.int64)
    ws.move_many(cell_vm[sel], dst[sel], reasons, gain[sel] / max(len(ws.live_hosts), 1))
    return True


def _precise(ws: Workspace, args: BalanceArgs, bar_vm: FloatA, n: int, extremes: int) -> int:
    """Up to ``n`` single best moves, one at a time, over one candidate set (its
    PICK_CELLS best cells at the start): each pick rescores them on the current loads
    (exact gains), so the moves follow the best-move-first order; cells of a moved VM
    die, cells whose receiver changed are checked again. Returns the number of moves,
    or -1 if the candidate set would be larger than CELL_CAP."""
    ps, pd = pairs(ws, args.weights, extremes, aligned=False)
    if ps.size == 0:
        return 0
    cp, vm = cells(ws, ps)
    if not vm.size:
        return 0
    if len(vm) > CELL_CAP and extremes > PRECISE_EXTREMES:
        return -1
    src, dst = ps[cp], pd[cp]
    # the epoch's picks come from the PICK_CELLS best cells at its start (whatever their
    # sign: a cell below the bar now may clear it after the epoch's first moves)
    gain = gains(ws, args.weights, vm, src, dst) - soft_penalty(ws, vm, src, dst)
    if len(vm) > PICK_CELLS:
        top = np.sort(np.argpartition(-gain, PICK_CELLS)[:PICK_CELLS])
        vm, src, dst = vm[top], src[top], dst[top]
    scorer = Scorer(ws, args.weights, vm, src, dst)
    bar = bar_vm[vm]
    alive = fits(ws, vm, dst)
    dead = np.zeros(len(vm), bool)
    hosts = max(int(ws.ok.sum()), 1)
    moved = 0
    for _ in range(n):
        pure = scorer(ws)  # exact on the current loads
        gain = pure - soft_penalty(ws, vm, src, dst)
        score = np.where(alive & (gain >= bar) & (pure > 0), gain, -np.inf)
        i = int(score.argmax())
        if score[i] == -np.inf:
            break
        v, s, d = int(vm[i]), int(src[i]), int(dst[i])
        over = bool((ws.dem[s] > ws.dcap[s]).any())
        ws.move(v, d, Reason.OVERLOAD if over else Reason.IMBALANCE, float(gain[i]) / hosts)
        moved += 1
        dead |= vm == v
        # receivers that changed (d fuller, s emptier) and rule partners: check again
        again = (dst == d) | (dst == s) | (ws.constrained[vm] & ws.constrained[v])
        again = np.flatnonzero(again & ~dead)
        alive[again] = fits(ws, vm[again], dst[again])
        alive &= ~dead
    return moved


def _feasible_best(
    ws: Workspace, cell_pair: IntA, vm: IntA, dst: IntA, gain: FloatA, keep: IntA
) -> IntA:
    """The first best feasible cell of each pair among ``keep`` (ascending). Capacity and
    rules are checked on each pair's best cell, and on the pair's other cells only if
    that one does not fit."""
    if not keep.size:
        return keep
    best = _best_per_pair(cell_pair, gain, keep)
    ok = fits(ws, vm[best], dst[best])
    if ok.all():
        return best
    bad = np.zeros(int(cell_pair[-1]) + 1, bool)
    bad[cell_pair[best[~ok]]] = True
    rest = keep[bad[cell_pair[keep]]]
    rest = rest[fits(ws, vm[rest], dst[rest])]
    more = _best_per_pair(cell_pair, gain, rest) if rest.size else rest
    return np.sort(np.concatenate([best[ok], more]))


def _best_per_pair(cell_pair: IntA, gain: FloatA, keep: IntA) -> IntA:
    """Of the cells ``keep`` (ascending, so grouped by pair), the first best of each pair."""
    cp, g = cell_pair[keep], gain[keep]
    first = np.flatnonzero(np.r_[True, cp[1:] != cp[:-1]])
    best = np.maximum.reduceat(g, first)
    top = np.flatnonzero(g == np.repeat(best, np.diff(np.r_[first, len(g)])))
    top = top[np.r_[True, cp[top][1:] != cp[top][:-1]]]
    out: IntA = keep[top]
    return out


def _match(src: IntA, dst: IntA, gain: FloatA) -> IntA:
    """Indices of a greedy matching by gain: each host used once, best gains first."""
    order = np.argsort(-gain, kind="stable")
    _, first_s = np.unique(src[order], return_index=True)
    order = order[np.sort(first_s)]
    _, first_d = np.unique(dst[order], return_index=True)
    return order[np.sort(first_d)]
