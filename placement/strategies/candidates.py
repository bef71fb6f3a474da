"""Candidate moves of balancing: host pairs, the VMs on their senders, and each move's
exact gain and feasibility, all as flat arrays ("cells": one VM, one receiver)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from placement.constraints import EPS
from placement.workspace import Workspace

__all__ = ["cells", "fits", "gains", "pairs", "soft_penalty", "weighted"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]

SOFT_PENALTY = 0.5  # gain units: about one good balancing move at 100 hosts
_ANGLES = np.linspace(0.0, np.pi / 2, 5)
DIRECTIONS = np.vstack([np.cos(_ANGLES), np.sin(_ANGLES)])  # (2, directions)
MAX_CLASSES = 8  # host size classes whose lightest hosts are all receivers


def pairs(
    ws: Workspace,
    weights: tuple[float, float],
    extremes: int,
    aligned: bool = True,
    limit: int | None = None,
) -> tuple[IntA, IntA]:
    """(sender, receiver) host pairs inside each domain.

    ``aligned`` (rounds): the r-th most loaded host with the r-th least loaded one for every
    r up to half the domain (and below ``limit``), plus every pair among the ``extremes``
    most and least loaded.
    Otherwise (precise search): the senders and receivers of :func:`_extremes`."""
    st = ws.state
    hosts = ws.live_hosts
    loads = ws.loads()
    loads = loads if len(hosts) == len(loads) else loads[hosts]
    if aligned and ws.one_domain:
        order = hosts[np.argsort(-weighted(loads, weights), kind="stable")]
        return _one_domain(order, extremes, limit)
    dom = st.domain[hosts]
    if not aligned:
        # the objective's gradient: a resource counts by its weight over its spread
        gradient = np.asarray(weights) / np.maximum(loads.std(axis=0), 1e-9)
        return _extremes(ws, hosts, loads * gradient, dom, extremes)
    score = weighted(loads, weights)
    order = hosts[np.lexsort((-score, dom))]
    dom = st.domain[order]
    first = np.r_[0, np.flatnonzero(dom[1:] != dom[:-1]) + 1]
    size = np.diff(np.r_[first, len(order)])
    start = np.repeat(first, size)
    rank = np.arange(len(order)) - start
    n = np.repeat(size, size)
    send = rank < (n // 2 if limit is None else np.minimum(n // 2, limit))
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


def weighted(loads: FloatA, weights: tuple[float, float]) -> FloatA:
    """(H,) ``loads[:, 0] * weights[0] + loads[:, 1] * weights[1]``, each product and the
    sum rounded on their own, in this order.

    Not ``loads @ weights``: elementwise numpy is the same on every machine, a matrix
    product is not (OpenBLAS's kernels differ in fusing the multiply and the add), and the
    hosts' order by this score decides the pairs."""
    out: FloatA = loads[:, 0] * weights[0] + loads[:, 1] * weights[1]
    return out


def _one_domain(order: IntA, extremes: int, limit: int | None) -> tuple[IntA, IntA]:
    """:func:`pairs` (aligned) when every host is in one domain, in the same order."""
    n = len(order)
    m = n // 2 if limit is None else min(n // 2, limit)
    e, ek = min(n // 2, extremes), min(n - n // 2, extremes)
    rank = np.repeat(np.arange(e), ek)
    off = np.tile(np.arange(ek), e)
    keep = off != rank
    ps = np.r_[order[:m], order[rank[keep]]]
    pd = np.r_[order[n - 1 - np.arange(m)], order[n - 1 - off[keep]]]
    return ps, pd


def _top(group: IntA, key: FloatA, k: int) -> IntA:
    """Positions of the ``k`` smallest ``key`` values within each group."""
    order = np.lexsort((key, group))
    g = group[order]
    first = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    size = np.diff(np.r_[first, len(order)])
    rank = np.arange(len(order)) - np.repeat(first, size)
    out: IntA = order[rank < k]
    return out


def _extremes(ws: Workspace, hosts: IntA, z: FloatA, dom: IntA, extremes: int) -> tuple[IntA, IntA]:
    """Every sender among the most loaded hosts of a domain with every receiver among the
    lightest hosts of each size class of that domain. "Most loaded" along several
    directions of the (CPU, memory) plane (``z``: loads scaled by the objective's gradient):
    a move's gain grows with its sender's load and falls with its receiver's in each
    resource, so the best receiver of a class lies on the lower hull of its load points;
    a few directions cover that hull."""
    if extremes >= len(hosts):
        snd = rcv = np.arange(len(hosts))
    else:
        # (directions, hosts): as weighted(z, direction) for each direction
        proj = z[:, 0] * DIRECTIONS[0, :, None] + z[:, 1] * DIRECTIONS[1, :, None]
        snd = np.unique(np.concatenate([_top(dom, -p, extremes) for p in proj]))
        grp = dom * MAX_CLASSES + _size_class(ws.state.phys[hosts, :2])
        # per class and direction, at least an epoch's worth of receivers (see balance)
        k_rcv = max(2, extremes // 4)
        rcv = np.unique(np.concatenate([_top(grp, p, k_rcv) for p in proj]))
    # all pairs of the same domain
    sd, rd = dom[snd], dom[rcv]
    ro = np.argsort(rd, kind="stable")
    rcv, rd = rcv[ro], rd[ro]
    lo = np.searchsorted(rd, sd, side="left")
    cnt = np.searchsorted(rd, sd, side="right") - lo
    rep = np.repeat(np.arange(len(snd)), cnt)
    off = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    cs, cr = snd[rep], rcv[lo[rep] + off]
    keep = cs != cr
    return hosts[cs[keep]], hosts[cr[keep]]


def _size_class(phys: FloatA) -> IntA:
    """Hosts of equal (cores, memory) share a class; beyond MAX_CLASSES distinct sizes,
    classes are memory-size quantiles."""
    _, cls = np.unique(phys, axis=0, return_inverse=True)
    cls = cls.ravel()
    if int(cls.max(initial=0)) < MAX_CLASSES:
        return cls.astype(np.int64)
    edges = np.quantile(phys[:, 1], np.linspace(0, 1, MAX_CLASSES + 1)[1:-1])
    out: IntA = np.searchsorted(edges, phys[:, 1]).astype(np.int64)
    return out


def cells(ws: Workspace, ps: IntA) -> tuple[IntA, IntA]:
    """(pair index, VM index) for every movable VM on each pair's sender."""
    st = ws.state
    is_sender = np.zeros(st.n_hosts, bool)
    is_sender[ps] = True
    on_sender = np.flatnonzero(is_sender[ws.place])
    host = ws.place[on_sender]
    if st.n_hosts < 2**16:  # a stable sort of 16-bit keys is a radix sort
        host = host.astype(np.uint16)
    by_host = on_sender[np.argsort(host, kind="stable")]
    count = np.bincount(ws.place[on_sender], minlength=st.n_hosts)
    begin = np.cumsum(count) - count
    reps = count[ps]
    cell_pair = np.repeat(np.arange(len(ps)), reps)
    within = np.arange(len(cell_pair)) - np.repeat(np.cumsum(reps) - reps, reps)
    cell_vm = by_host[begin[ps][cell_pair] + within]
    movable = ~st.pinned[cell_vm]
    return cell_pair[movable], cell_vm[movable]


def gains(ws: Workspace, weights: tuple[float, float], vm: IntA, src: IntA, dst: IntA) -> FloatA:
    """Exact drop of the objective (weighted load standard deviations) for each move alone,
    times the number of hosts."""
    live = ws.ok
    n = max(len(ws.live_hosts), 1)
    loads = (ws.dem / ws.phys).T  # (2, H)
    total = np.zeros(len(vm))
    for k in (0, 1):
        lk = loads[k]
        lv = lk[live]
        s, q = lv.sum(), (lv**2).sum()  # as Scorer, no BLAS
        dem = ws.need_rows[3 + k][vm]
        a = dem / ws.phys_rows[k][src]
        b = dem / ws.phys_rows[k][dst]
        var_after = (q + a * (a - 2 * lk[src]) + b * (b + 2 * lk[dst])) / n - ((s + b - a) / n) ** 2
        sd_now = np.sqrt(max(q / n - (s / n) ** 2, 0.0))
        total += weights[k] * (sd_now - np.sqrt(np.maximum(var_after, 0.0)))
    out: FloatA = total * n
    return out


class Scorer:
    """:func:`gains` of fixed cells on the workspace's current loads; the per-cell
    constants (each VM's load share on its sender and its receiver) are computed once."""

    def __init__(
        self, ws: Workspace, weights: tuple[float, float], vm: IntA, src: IntA, dst: IntA
    ) -> None:
        st = ws.state
        phys = np.maximum(st.phys[:, :2], EPS)
        self.weights, self.src, self.dst = weights, src, dst
        self.terms: list[tuple[FloatA, FloatA, FloatA, FloatA]] = []
        for k in (0, 1):
            a = st.demand[vm, k] / phys[src, k]
            b = st.demand[vm, k] / phys[dst, k]
            self.terms.append((2 * a, 2 * b, a * a + b * b, b - a))

    def __call__(self, ws: Workspace) -> FloatA:
        live = ws.ok
        n = max(int(live.sum()), 1)
        loads = ws.loads()
        total = np.zeros(len(self.src))
        for k, (a2, b2, sq, shift) in enumerate(self.terms):
            lk = loads[:, k]
            s, q = lk[live].sum(), (lk[live] ** 2).sum()
            mean = (s + shift) / n
            var_after = (q + sq - a2 * lk[self.src] + b2 * lk[self.dst]) / n - mean * mean
            sd_now = np.sqrt(max(q / n - (s / n) ** 2, 0.0))
            total += self.weights[k] * (sd_now - np.sqrt(np.maximum(var_after, 0.0)))
        out: FloatA = total * n
        return out


def soft_penalty(ws: Workspace, vm: IntA, src: IntA, dst: IntA) -> FloatA:
    """SOFT_PENALTY per should/should-not rule a move breaks, minus per rule it mends."""
    out = np.zeros(len(vm))
    cons = np.flatnonzero(ws.constrained[vm])
    if cons.size and ws.state.rules.vh_vm.size:
        uniq, inv = np.unique(vm[cons], return_inverse=True)
        soft = ws.state.rules.soft_violations(uniq, ws.state.n_hosts)
        out[cons] = SOFT_PENALTY * (soft[inv, dst[cons]] - soft[inv, src[cons]])
    return out


def fits(ws: Workspace, vm: IntA, dst: IntA) -> NDArray[np.bool_]:
    room = np.vstack([(ws.cap - ws.used).T, (ws.dcap - ws.dem).T])  # (5, H)
    ok: NDArray[np.bool_] = np.logical_and.reduce(room[:, dst] >= ws.need_rows[:, vm], axis=0)
    cons = np.flatnonzero(ws.constrained[vm])
    if cons.size:
        uniq, inv = np.unique(vm[cons], return_inverse=True)
        ok[cons] &= ws.rule_ok(uniq)[inv, dst[cons]]
    return ok
