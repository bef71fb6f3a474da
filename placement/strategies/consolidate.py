"""Consolidate: pack VMs onto as few hosts as possible under a target utilisation.

Per domain, hosts are ranked for keeping: largest first (the lower bound counts the largest
capacities first), then fuller; with power curves, the most capacity per watt first. The
fewest top-ranked hosts whose capacity covers the domain's allocation are the targets;
every other host is a candidate to empty, in the reverse order (smallest, emptiest first),
so the large hosts are still there when the targets run out of room. A candidate's VMs
(largest first) go onto targets through :class:`BestFit` (key: the domain's dominant
resource, kept in step with the second scarcest). If one does not fit, the candidate's
moves are rolled back and the largest host still to come becomes a target (often not the
one that failed: its whole capacity joins the kept set), and the failed one is tried
again. Targets only receive, so every intermediate placement is feasible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.constraints import EPS, Capacity
from placement.plan import Plan, Reason
from placement.state import ClusterState
from placement.strategies.bestfit import BestFit
from placement.strategies.remediate import remediate, shed_overload
from placement.workspace import Workspace

__all__ = ["ConsolidateArgs", "consolidate"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]


@dataclass(frozen=True)
class ConsolidateArgs:
    """Arguments of :func:`consolidate`.

    capacity : demand headroom every kept host must keep (target utilisation).
    max_moves : optional budget; hosts are emptied whole or not at all.
    """

    capacity: Capacity = Capacity(0.8, 0.95)
    max_moves: int | None = None

    def validate(self) -> None:
        self.capacity.validate()
        if self.max_moves is not None and self.max_moves < 0:
            raise ValueError(f"max_moves: expected >= 0, got {self.max_moves}")


def consolidate(state: ClusterState, args: ConsolidateArgs, *, rng: np.random.Generator) -> Plan:
    del rng  # deterministic
    ws = Workspace(state, args.capacity)
    before = float((np.bincount(ws.place, minlength=state.n_hosts) > 0).sum())
    unresolved, notes = remediate(ws, pack=True)
    if stuck := shed_overload(ws, pack=True):
        notes.append(f"{stuck} VMs stay on hosts above the demand target: no host has headroom")
    budget = np.inf if args.max_moves is None else ws.n_moves + args.max_moves
    release: list[int] = []
    for dom in np.unique(state.domain[state.host_ok]).tolist():
        release += _pack_domain(ws, dom, budget)
    after = float((np.bincount(ws.place, minlength=state.n_hosts) > 0).sum())
    return ws.to_plan("consolidate", before, after, release, unresolved, tuple(notes))


def _pack_domain(ws: Workspace, dom: int, budget: float) -> list[int]:
    st = ws.state
    hosts = np.flatnonzero(ws.ok & (st.domain == dom))
    key, second = _scarcest(ws, hosts)
    fill = ws.used[hosts, key] / np.maximum(ws.cap[hosts, key], EPS)
    # fill only orders hosts of about the same size (a full small host is not worth a
    # larger empty one)
    size = st.alloc_cap[hosts, key] / max(float(st.alloc_cap[hosts, key].max()), EPS)
    score = 10 * size + fill + 10 * _efficiency(st, hosts, key)
    keep_rank = hosts[np.argsort(-score, kind="stable")]
    n_keep = _hosts_needed(ws, keep_rank)
    stuck = _unmovable_hosts(ws, hosts)
    target = np.zeros(st.n_hosts, bool)
    target[keep_rank[:n_keep]] = True
    target[stuck] = True
    cand = keep_rank[~target[keep_rank]][::-1]
    fit = BestFit(ws, np.flatnonzero(target), key, second)
    by_host = ws.vms_by_host(cand)
    return _empty_in_turn(ws, fit, cand.tolist(), by_host, budget)


def _empty_in_turn(
    ws: Workspace, fit: BestFit, queue: list[int], by_host: dict[int, IntA], budget: float
) -> list[int]:
    """Empty the hosts of ``queue`` in order. When one does not fit, the largest host still
    in the queue becomes a target instead (its whole capacity joins the kept set, not only
    the failed host's), and the failed host is tried again."""
    size = ws.cap[:, fit.key]
    released: list[int] = []
    moved: list[IntA] = []
    dsts: list[int] = []
    i = 0
    while i < len(queue):
        h = queue[i]
        vms = by_host[h]
        over_budget = ws.n_moves + len(dsts) + len(vms) > budget
        if not over_budget and _empty_host(ws, fit, vms, dsts):
            released.append(h)
            moved.append(vms)
            i += 1
            continue
        rest = queue[i:]
        p = h if over_budget else rest[int(np.argmax(size[rest]))]
        fit.add(p)  # kept: it receives VMs from the hosts after it
        del queue[i + rest.index(p)]
    _apply(ws, moved, dsts)
    return released


def _apply(ws: Workspace, moved: list[IntA], dsts: list[int]) -> None:
    """Record the moves of the emptied hosts, in order, in one go: targets only receive,
    and each placement was checked against the room the ones before it left."""
    if not dsts:
        return
    vms = np.concatenate(moved)
    count = np.array([len(m) for m in moved])
    gain = np.repeat(1.0 / np.maximum(count, 1), count)
    reason = np.full(len(vms), int(Reason.CONSOLIDATION), np.int64)
    ws.move_many(vms, np.array(dsts, dtype=np.int64), reason, gain)


def _scarcest(ws: Workspace, hosts: IntA) -> tuple[int, int]:
    """The allocation resource with the highest use-to-capacity ratio in the domain (the
    packing key), and the resource, allocation or demand (3: CPU, 4: memory), with the
    highest ratio after it."""
    used = np.r_[ws.used[hosts].sum(axis=0), ws.dem[hosts].sum(axis=0)]
    cap = np.r_[ws.cap[hosts].sum(axis=0), ws.dcap[hosts].sum(axis=0)]
    ratio = used / np.maximum(cap, EPS)
    key = int(np.argmax(ratio[:3]))
    ratio[key] = -np.inf
    return key, int(np.argmax(ratio))


def _efficiency(st: ClusterState, hosts: IntA, key: int) -> FloatA:
    """Capacity per watt at full load, scaled to [0, 1] (zeros without power curves)."""
    if st.power is None:
        return np.zeros(len(hosts))
    eff = st.alloc_cap[hosts, key] / np.maximum(st.power[hosts, -1], EPS)
    out: FloatA = eff / max(float(eff.max()), EPS)
    return out


def _hosts_needed(ws: Workspace, ranked: IntA) -> int:
    need = ws.used[ranked].sum(axis=0)
    covered = np.cumsum(ws.cap[ranked], axis=0) >= need
    return int(covered.all(axis=1).argmax()) + 1 if len(ranked) else 0


def _unmovable_hosts(ws: Workspace, hosts: IntA) -> IntA:
    """Hosts holding a pinned VM or a VM in a VM-VM or VM-host rule: kept as they are."""
    st = ws.state
    stuck = st.pinned | ws.constrained
    has = np.bincount(ws.place[stuck], minlength=st.n_hosts) > 0
    return hosts[has[hosts]]


def _empty_host(ws: Workspace, fit: BestFit, vms: IntA, dsts: list[int]) -> bool:
    """Place all of ``vms`` (one host's, largest first) on targets, appending to ``dsts``
    and sorting ``vms`` in that order; or place nothing."""
    vms[:] = vms[np.argsort(-ws.state.alloc[vms, fit.key], kind="stable")]
    start = len(dsts)
    for v in vms.tolist():
        d = fit.place(v)
        if d < 0:
            for dd, vv in zip(dsts[start:], vms.tolist(), strict=False):
                fit.give_back(dd, vv)
            del dsts[start:]
            return False
        dsts.append(d)
    return True
