"""CPU share of every VM on every host, as CloudSim's over-subscribing time-shared scheduler.

One call evaluates all hosts at once. A VM is listed on its host and, while it migrates,
also on its destination (an "in" entry). Per host, in list order (CloudSim sums in that
order, and its strict comparisons see the rounding, so the order is kept):

- a VM's request is capped at one core's MIPS (all VMs are single-core);
- a VM migrating in weighs 10 % of its request;
- if the weights fit in the host's MIPS, each VM gets its capped request (90 % while it
  migrates out, 10 % on the destination); otherwise all are scaled by capacity / weights
  and floored;
- the source host's utilisation adds a migrating VM's share divided by 0.9 (its full
  request); the destination adds its 10 % share as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from xdrs.sim.sums import seq_sum

__all__ = ["Entries", "HostState", "evaluate", "evaluate_compiled", "slots", "slots_compiled"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]
BoolA = NDArray[np.bool_]


@dataclass(frozen=True)
class Entries:
    """VM-on-host entries: ``vm``, ``host``, ``seq`` (list order), ``incoming`` (E,)."""

    vm: IntA
    host: IntA
    seq: IntA
    incoming: BoolA


@dataclass(frozen=True)
class HostState:
    """Result of :func:`evaluate`. Per host (H,): ``util_mips`` (CloudSim's utilisation,
    migrating shares / 0.9), ``req_mips`` (sum of requests), ``alloc_mips`` (sum of shares),
    ``avail`` (scheduler's free MIPS); ``rows`` (R,) occupied hosts and ``grid`` (R, K) the
    entry index per list slot (-1 pad).
    Per entry (E,): ``alloc``, ``req``, ``migrating_out``."""

    util_mips: FloatA
    req_mips: FloatA
    alloc_mips: FloatA
    avail: FloatA
    rows: IntA
    grid: IntA
    alloc: FloatA
    req: FloatA
    migrating_out: BoolA


def slots(host: IntA, seq: IntA) -> tuple[IntA, IntA]:
    """Occupied hosts (R,) and (R, K) index into the entries of each one's list, ordered by
    ``seq``; -1 pads. Hosts without entries are left out (their sums are 0)."""
    if host.size == 0:
        return np.zeros(0, dtype=np.int64), np.full((0, 1), -1, dtype=np.int64)
    # one sort key, host then seq (a stable sort keeps ties in entry order, as lexsort)
    key = host * (int(seq.max()) + 1) + seq
    order = np.argsort(key, kind="stable")
    hs = host[order]
    counts = np.bincount(hs)
    rows = np.flatnonzero(counts)
    rank = np.zeros(counts.size, dtype=np.int64)
    rank[rows] = np.arange(rows.size)
    pos = np.arange(hs.size) - (np.cumsum(counts) - counts)[hs]
    grid = np.full((rows.size, int(counts.max())), -1, dtype=np.int64)
    grid[rank[hs], pos] = order
    return rows.astype(np.int64), grid


def slots_compiled(k: ModuleType, host: IntA, seq: IntA) -> tuple[IntA, IntA]:
    """:func:`slots` by the compiled kernel module ``k`` (the same arrays)."""
    if host.size == 0:
        return slots(host, seq)
    rows, grid = k.slots(host, seq)
    return rows, grid


def gather(values: FloatA, grid: IntA) -> FloatA:
    """(H, K) ``values`` (E,) laid out by list slot, 0.0 in padding."""
    return np.where(grid >= 0, values[np.maximum(grid, 0)], 0.0)


def slot_sum(values: FloatA, grid: IntA) -> FloatA:
    """(H,) per-host sum of ``values`` (E,) added one list slot after another, like
    CloudSim's loops and the compiled kernel (:func:`xdrs.sim.sums.seq_sum`; a plain
    ``sum`` would use pairwise summation and differ in the last bits)."""
    return np.asarray(seq_sum(gather(values, grid).T))


def _oversubscribed(weight: FloatA, grid: IntA, total: FloatA) -> tuple[BoolA, FloatA, FloatA]:
    """Over-subscription flag, free MIPS and weight sum per host, in list order."""
    w = gather(weight, grid)
    # avail before slot j = ((total - w0) - w1) - ..., each step rounded like Java's -=
    # (cumsum is a running sum, strictly left to right)
    avail = np.cumsum(np.column_stack([total, -w]), axis=1)
    over: BoolA = np.asarray((avail[:, :-1] < w).any(axis=1))
    wsum: FloatA = np.asarray(seq_sum(w.T))
    return over, np.where(over, 0.0, avail[:, -1]), wsum


def evaluate(
    e: Entries,
    req_vm: FloatA,
    in_migration: BoolA,
    host_mips: FloatA,
    host_pe: FloatA,
    layout: tuple[IntA, IntA] | None = None,
) -> HostState:
    """Shares and host utilisations for requests ``req_vm`` (V,) MIPS.

    ``in_migration`` (V,) marks VMs that are migrating (listed on source and destination);
    ``layout`` is ``slots(e.host, e.seq)`` if already known.
    """
    n_h = host_mips.shape[0]
    rows, grid = layout or slots(e.host, e.seq)
    req = req_vm[e.vm]
    pe = host_pe[e.host]
    capped = np.where(req > pe, pe, req)
    weight = np.where(e.incoming, capped * 0.1, capped)
    over_r, avail_r, wsum_r = _oversubscribed(weight, grid, host_mips[rows])
    over = np.zeros(n_h, dtype=bool)
    over[rows] = over_r
    avail = host_mips.copy()
    avail[rows] = avail_r
    wsum = np.zeros(n_h)
    wsum[rows] = wsum_r
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (host_mips / wsum)[e.host]
    out = in_migration[e.vm] & ~e.incoming
    plain = np.where(out, capped * 0.9, np.where(e.incoming, capped * 0.1, capped))
    with np.errstate(invalid="ignore"):  # scale is inf/nan only on hosts that are not over
        base = np.where(e.incoming, capped * 0.1 * scale, capped * scale)
        scaled = np.where(out, np.floor(capped * scale * 0.9), np.floor(base))
    alloc = np.where(over[e.host], scaled, plain)
    contrib = np.where(out, alloc / 0.9, alloc)  # the destination's 10 % counts as is
    sums = np.zeros((3, n_h))
    sums[:, rows] = [slot_sum(contrib, grid), slot_sum(req, grid), slot_sum(alloc, grid)]
    return HostState(
        util_mips=sums[0],
        req_mips=sums[1],
        alloc_mips=sums[2],
        avail=avail,
        rows=rows,
        grid=grid,
        alloc=alloc,
        req=req,
        migrating_out=out,
    )


def evaluate_compiled(
    k: ModuleType,
    e: Entries,
    req_vm: FloatA,
    in_migration: BoolA,
    host_mips: FloatA,
    host_pe: FloatA,
    layout: tuple[IntA, IntA],
) -> HostState:
    """:func:`evaluate` by the compiled kernel module ``k`` (bit-identical)."""
    rows, grid = layout
    sums = np.zeros((4, host_mips.shape[0]))
    per = np.zeros((3, e.vm.shape[0]))
    k.evaluate(rows, grid, e.vm, e.incoming, req_vm, in_migration, host_mips, host_pe, sums, per)
    return HostState(
        util_mips=sums[0],
        req_mips=sums[1],
        alloc_mips=sums[2],
        avail=sums[3],
        rows=rows,
        grid=grid,
        alloc=per[0],
        req=per[1],
        migrating_out=per[2] != 0,
    )


def utilisation(util_mips: FloatA, host_mips: FloatA) -> FloatA:
    """CloudSim's ``getUtilizationOfCpu``: MIPS used / capacity, values in (1, 1.01) set to 1."""
    u = util_mips / host_mips
    return np.where((u > 1) & (u < 1.01), 1.0, u)
