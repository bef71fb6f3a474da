"""Mandatory moves ("must move" before "could improve"): maintenance, hard rules, capacity.

Every strategy runs this first. Each VM that must move is placed on the feasible host of
its domain where it leaves the lowest load (spreading, as DRS does on evacuation); if no
host has demand headroom, allocation capacity alone decides (noted in the plan); if no host
fits at all, the VM is reported unresolved. A pinned VM never moves: when it sits on a host
in maintenance, or still breaks a hard rule once the other VMs have moved, it is reported
unresolved too (the constraint that refuses every host is then "VM pinned").
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from placement.plan import Reason
from placement.state import MEM
from placement.strategies.bestfit import BestFit
from placement.workspace import Workspace

__all__ = ["must_move", "remediate", "shed_overload"]

IntA = NDArray[np.int64]
FloatA = NDArray[np.float64]


def must_move(ws: Workspace) -> tuple[IntA, IntA]:
    """VMs that violate a hard constraint now, and the reason of each.

    Pinned VMs are included (they cannot move, so :func:`remediate` reports them); a
    capacity excess picks its victims among the movable VMs only.
    """
    st, n_v = ws.state, ws.state.n_vms
    reason = np.full(n_v, -1, np.int64)
    over = (ws.used > ws.cap).any(axis=1)
    if over.any():
        hosts = np.flatnonzero(over)
        reason[_victims(ws, hosts, ws.used - ws.cap, ws.state.alloc)] = Reason.CAPACITY
    cons = np.flatnonzero(ws.constrained)
    if cons.size:
        ok = ws.rule_ok(cons)[np.arange(cons.size), ws.place[cons]]
        reason[cons[~ok]] = Reason.RULE
    reason[st.maintenance[ws.place]] = Reason.MAINTENANCE
    vms = np.flatnonzero(reason >= 0)
    return vms, reason[vms]


def _victims(ws: Workspace, hosts: IntA, excess: FloatA, size: FloatA) -> IntA:
    """On each of ``hosts``, the largest movable VMs (by ``size (V, R)``) until the
    host's ``excess (H, R)`` is gone."""
    st, out = ws.state, []
    for h, on in ws.vms_by_host(hosts).items():
        vms = on[~st.pinned[on]]
        order = vms[np.argsort(-size[vms].max(axis=1), kind="stable")]
        enough = (np.cumsum(size[order], axis=0) >= excess[h]).all(axis=1)
        need = int(np.argmax(enough)) + 1 if enough.any() else len(order)
        out.extend(order[:need].tolist())
    return np.array(out, dtype=np.int64)


def remediate(ws: Workspace, pack: bool = False) -> tuple[list[int], list[str]]:
    """Apply the mandatory moves to ``ws``; return unresolved VMs and notes.

    ``pack``: place on the fullest active host that fits (consolidation) instead of spreading.
    """
    vms, why = must_move(ws)
    pinned = ws.state.pinned[vms]
    order = np.argsort(-ws.state.alloc[vms[~pinned], MEM], kind="stable")
    unresolved: list[int] = []
    relaxed = 0
    for v, r in zip(vms[~pinned][order].tolist(), why[~pinned][order].tolist(), strict=True):
        if r == Reason.RULE and _rule_fixed(ws, v):
            continue  # an earlier move (of another group member) already fixed it
        dst, tight = _target(ws, v, pack)
        if dst < 0:
            unresolved.append(v)
            continue
        relaxed += tight
        ws.move(v, dst, Reason(r))
    # after the others moved: a pinned VM's rule may hold now; maintenance never does
    stuck = [v for v, r in zip(vms[pinned].tolist(), why[pinned].tolist(), strict=True)
             if r != Reason.RULE or not _rule_fixed(ws, v)]  # fmt: skip
    return unresolved + stuck, _notes(relaxed, len(unresolved), len(stuck))


def _rule_fixed(ws: Workspace, v: int) -> bool:
    return bool(ws.rule_ok(np.array([v]))[0, ws.place[v]])


def _notes(relaxed: int, unplaced: int, pinned: int) -> list[str]:
    notes = []
    if relaxed:
        notes.append(f"{relaxed} mandatory moves exceed the demand target (no host had headroom)")
    if unplaced:
        notes.append(f"{unplaced} VMs must move but no host can take them")
    if pinned:
        notes.append(f"{pinned} pinned VMs must move (maintenance or a hard rule) but are pinned")
    return notes


def _target(ws: Workspace, v: int, pack: bool) -> tuple[int, bool]:
    """Best feasible host for ``v`` and whether headroom had to be relaxed; (-1, False) if none.

    Spread: the host left with the lowest peak load. Pack: the active host left with the
    least memory slack (an empty host only when no active one fits).
    """
    for headroom in (True, False):
        ok = ws.feasible(v, headroom=headroom)
        if ok.any():
            return _pick(ws, v, ok, pack), not headroom
    return -1, False


def _pick(ws: Workspace, v: int, ok: NDArray[np.bool_], pack: bool) -> int:
    if pack:
        empty = ws.used[:, MEM] <= 0
        score = empty * 2.0 + (ws.cap[:, MEM] - ws.used[:, MEM]) / np.maximum(ws.cap[:, MEM], 1e-9)
    else:
        phys, dem = ws.state.phys, ws.state.demand[v]
        score = np.maximum(
            (ws.dem[:, 0] + dem[0]) / np.maximum(phys[:, 0], 1e-9),
            (ws.dem[:, 1] + dem[1]) / np.maximum(phys[:, 1], 1e-9),
        )
    return int(np.argmin(np.where(ok, score, np.inf)))


def shed_overload(ws: Workspace, pack: bool = False) -> int:
    """Move VMs off hosts whose demand exceeds the target until they are under it.

    Returns the number of VMs that found no host with headroom (they stay).
    """
    over = np.flatnonzero((ws.dem > ws.dcap).any(axis=1) & ws.ok)
    if not over.size:
        return 0
    share = ws.state.demand[:, :2] / np.maximum(ws.dcap[ws.place], 1e-9)
    vms = _victims(ws, over, (ws.dem - ws.dcap) / np.maximum(ws.dcap, 1e-9), share)
    # packing in one domain without rules: a best-fit index instead of a scan per VM (the
    # overloaded hosts fit nothing, their stale room in the index only errs on the safe side)
    fit = BestFit(ws, ws.live_hosts, MEM, 3) if pack and _plain(ws) else None
    stuck = 0
    for v in vms.tolist():
        if fit is not None:
            dst = fit.place(v)
        else:
            ok = ws.feasible(v, headroom=True)
            dst = _pick(ws, v, ok, pack) if ok.any() else -1
        if dst < 0:
            stuck += 1
            continue
        ws.move(v, dst, Reason.OVERLOAD)
    return stuck


def _plain(ws: Workspace) -> bool:
    """One migration domain and no VM in a rule: capacity is the only constraint."""
    return ws.one_domain and not ws.constrained.any()
