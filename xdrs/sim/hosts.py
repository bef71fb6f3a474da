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

import numpy as np
from numpy.typing import NDArray

__all__ = ["Entries", "HostState", "evaluate", "slots"]

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
    ``avail`` (scheduler's free MIPS), ``grid`` (H, K) entry index per list slot (-1 pad).
    Per entry (E,): ``alloc``, ``req``, ``migrating_out``."""

    util_mips: FloatA
    req_mips: FloatA
    alloc_mips: FloatA
    avail: FloatA
    grid: IntA
    alloc: FloatA
    req: FloatA
    migrating_out: BoolA


def slots(host: IntA, seq: IntA, n_hosts: int) -> IntA:
    """(H, K) index into the entries of each host's list, ordered by ``seq``; -1 pads."""
    order = np.lexsort((seq, host))
    hs = host[order]
    counts = np.bincount(hs, minlength=n_hosts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(hs.size) - starts[hs]
    k = int(counts.max()) if counts.size and hs.size else 0
    grid = np.full((n_hosts, max(k, 1)), -1, dtype=np.int64)
    grid[hs, pos] = order
    return grid


def seq_sum(values: FloatA, grid: IntA) -> FloatA:
    """(H,) per-host sum of ``values`` (E,) added one list slot after another from 0.0."""
    acc = np.zeros(grid.shape[0])
    for j in range(grid.shape[1]):  # K <= VMs per host
        col = grid[:, j]
        acc = acc + np.where(col >= 0, values[col], 0.0)
    return acc


def _oversubscribed(weight: FloatA, grid: IntA, total: FloatA) -> tuple[BoolA, FloatA, FloatA]:
    avail = total.copy()
    over = np.zeros(grid.shape[0], dtype=bool)
    wsum = np.zeros(grid.shape[0])
    for j in range(grid.shape[1]):
        col = grid[:, j]
        w = np.where(col >= 0, weight[col], 0.0)
        fits = avail >= w
        over |= ~fits
        avail = np.where(fits & ~over, avail - w, 0.0)
        wsum = wsum + w
    return over, avail, wsum


def evaluate(
    e: Entries,
    req_vm: FloatA,
    in_migration: BoolA,
    host_mips: FloatA,
    host_pe: FloatA,
) -> HostState:
    """Shares and host utilisations for requests ``req_vm`` (V,) MIPS.

    ``in_migration`` (V,) marks VMs that are migrating (listed on source and destination).
    """
    n_h = host_mips.shape[0]
    grid = slots(e.host, e.seq, n_h)
    req = req_vm[e.vm]
    pe = host_pe[e.host]
    capped = np.where(req > pe, pe, req)
    weight = np.where(e.incoming, capped * 0.1, capped)
    over, avail, wsum = _oversubscribed(weight, grid, host_mips)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (host_mips / wsum)[e.host]
    out = in_migration[e.vm] & ~e.incoming
    plain = np.where(out, capped * 0.9, np.where(e.incoming, capped * 0.1, capped))
    with np.errstate(invalid="ignore"):  # scale is inf/nan only on hosts that are not over
        base = np.where(e.incoming, capped * 0.1 * scale, capped * scale)
        scaled = np.where(out, np.floor(capped * scale * 0.9), np.floor(base))
    alloc = np.where(over[e.host], scaled, plain)
    contrib = np.where(out, alloc / 0.9, alloc)  # the destination's 10 % counts as is
    return HostState(
        util_mips=seq_sum(contrib, grid),
        req_mips=seq_sum(req, grid),
        alloc_mips=seq_sum(alloc, grid),
        avail=avail,
        grid=grid,
        alloc=alloc,
        req=req,
        migrating_out=out,
    )


def utilisation(util_mips: FloatA, host_mips: FloatA) -> FloatA:
    """CloudSim's ``getUtilizationOfCpu``: MIPS used / capacity, values in (1, 1.01) set to 1."""
    u = util_mips / host_mips
    return np.where((u > 1) & (u < 1.01), 1.0, u)
