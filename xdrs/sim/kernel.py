"""Compiled (numba) PABFD host search: one call scores every candidate host for one VM.

The same decision as :meth:`xdrs.sim.planning.Planning.find_host` (the numpy reference
path), written as one loop over hosts so that a search costs one call instead of ~40
numpy calls. Every float operation is done in the reference's order so that results are
bit-identical (the tests compare both paths move by move): the sums and the LR terms as
defined once in :mod:`xdrs.sim.sums` (no BLAS, so no dependence on which kernel OpenBLAS
picks), the power curve as ``placement.power.spec_power_rows``, the detectors as
``placement.overload``.
Detector codes: ``xdrs.sim.fast.DETECTOR_CODES``. :mod:`xdrs.sim.aot` compiles these
functions ahead of time; ``XDRS_SIM_KERNEL`` chooses (:mod:`xdrs.sim.fast`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import __version__ as numba_version
from numba import njit
from numpy.typing import NDArray

from xdrs.sim.sums import dot, seq_sum

__all__ = [
    "IMPL",
    "create",
    "energy",
    "evaluate",
    "find_host",
    "host_hist",
    "host_record",
    "initial",
    "lr_rows",
    "lr_terms",
    "numba_version",
    "overloaded",
    "place",
    "power_at",
    "push_history",
    "refresh",
    "relieve_mmt",
    "robust_threshold",
    "setup_lists",
    "slots",
    "underload",
    "vm_record",
]

IMPL = f"JIT-compiled kernels (numba {numba_version})"
_FALLBACK = 0.7  # placement.overload.FALLBACK_THRESHOLD
_MIN_ROBUST = 12  # placement.overload.MIN_ROBUST


@njit(cache=True)
def _median_sorted(x: NDArray[np.float64], n: int) -> float:
    lo = x[(n - 1) // 2]
    if n % 2 == 1:
        return float(lo)
    return float(lo + 0.5 * (x[n // 2] - lo))


@njit(cache=True)
def robust_threshold(h: NDArray[np.float64], kind: int, safety: float) -> float:
    """``1 - safety * spread`` of history ``h`` (newest first, trailing zeros trimmed) for
    IQR (kind 1) or MAD (kind 2); NaN with fewer than 12 samples."""
    n = 0
    for i in range(h.size):
        if h[i] != 0:
            n = i + 1
    if n < _MIN_ROBUST:
        return math.nan
    x = np.sort(h[:n])
    if kind == 1:
        q1 = math.floor(0.25 * (n + 1) + 0.5) - 1
        q3 = math.floor(0.75 * (n + 1) + 0.5) - 1
        return float(1 - safety * (x[q3] - x[q1]))
    med = _median_sorted(x, n)
    dev = np.sort(np.abs(med - x))
    return float(1 - safety * _median_sorted(dev, n))


@njit(cache=True)
def _power(u: float, row: NDArray[np.float64]) -> float:
    u10 = u * 10
    lo = int(u10)
    p1 = row[lo]
    p2 = row[math.ceil(u10)]
    return float(p1 + (p2 - p1) / 10 * (u - lo / 10) * 100)


@njit(cache=True)
def power_at(
    util_mips: NDArray[np.float64], host_mips: NDArray[np.float64],
    table: NDArray[np.float64], u: NDArray[np.float64],
) -> NDArray[np.float64]:  # fmt: skip
    """(H,) power of every host using ``util_mips`` (H,) MIPS; ``u`` (H,) gets its
    utilisation (``hosts.utilisation``: values in (1, 1.01) are 1); the power is
    ``placement.power.spec_power`` at ``min(u, 1)``, host by host in the same float
    operations."""
    out = np.empty(util_mips.size)
    for h in range(util_mips.size):
        x = util_mips[h] / host_mips[h]
        if x > 1 and x < 1.01:
            x = 1.0
        u[h] = x
        out[h] = _power(min(x, 1.0), table[h])
    return out


@njit(cache=True)
def _overloaded_with(
    h: int,
    v: int,
    r: float,
    kind: int,
    param: float,
    f: NDArray[np.float64],  # (12, H) host rows, see find_host
    hist: NDArray[np.float64],
    vm: NDArray[np.float64],  # (5, V) VM columns, see find_host
    terms: NDArray[np.float64],
    interval: float,
) -> bool:
    mips = f[1, h]
    util = (f[4, h] + r) / mips
    if kind == 0:
        return bool(util > param)
    if kind == 3:
        secs = max(f[5, h], vm[0, v]) / (f[6, h] / (2 * 8000))
        ahead = math.ceil(secs / interval)
        pred = (f[7, h] + vm[2, v] / mips) + ahead * (f[8, h] + vm[3, v] / mips)
        if vm[4, v] != 0 or f[11, h] != 0:
            return bool(param * pred >= 1)
        return bool(util > _FALLBACK)
    thr = robust_threshold(hist[h] + terms[v] / mips, kind, param)
    if math.isnan(thr):
        return bool(util > _FALLBACK)
    return bool(util > thr)


@njit(cache=True)
def find_host(
    v: int,
    r: float,
    excluded: NDArray[np.bool_],
    dormant: NDArray[np.bool_],
    type_id: NDArray[np.int64],
    n_types: int,
    f: NDArray[np.float64],
    power: NDArray[np.float64],
    hist: NDArray[np.float64],
    vm: NDArray[np.float64],
    terms: NDArray[np.float64],
    kind: int,
    param: float,
    interval: float,
    memory_aware: bool,
) -> int:
    """PABFD target of VM ``v`` requesting ``r`` MIPS, -1 if none.

    ``f`` rows per host: 0 pe MIPS, 1 MIPS, 2 free MIPS (scheduler), 3 allocated MIPS,
    4 requested MIPS, 5 largest VM memory, 6 bandwidth, 7/8 LR intercept and slope terms,
    9/10 free memory and network (checked if memory-aware), 11 history of >= 10 samples;
    ``power`` (H, 12): the curve (11 points) then the power at the start of the decision;
    ``vm`` rows per VM: 0 memory, 1 bandwidth, 2/3 LR terms, 4 history of >= 10 samples.
    Candidates are scanned in index order; of the dormant hosts (nothing allocated, idle
    at the start) only the first non-excluded one of each type is scored (the others tie
    with it and lose, as in the reference).
    """
    seen = np.zeros(n_types, dtype=np.bool_)
    best, best_inc = -1, math.inf
    for h in range(f.shape[1]):
        if excluded[h]:
            continue
        if dormant[h]:
            if seen[type_id[h]]:
                continue
            seen[type_id[h]] = True
        if not (f[0, h] >= r and f[2, h] >= r):
            continue
        if memory_aware and not (f[9, h] >= vm[0, v] and f[10, h] >= vm[1, v]):
            continue
        after = min((f[3, h] + r) / f[1, h], 1.0)
        inc = _power(after, power[h]) - power[h, 11]
        if best >= 0 and not inc < best_inc:
            continue
        if f[3, h] != 0 and _overloaded_with(h, v, r, kind, param, f, hist, vm, terms, interval):
            continue
        best, best_inc = h, inc
    return best


_dot = njit(cache=True)(dot)
_seq_sum = njit(cache=True)(seq_sum)


@njit(cache=True)
def lr_terms(f: NDArray[np.float64], hist: NDArray[np.float64], h: int,
              coef: NDArray[np.float64]) -> None:  # fmt: skip
    """Rows 7/8 of host ``h``: its history dotted with the LR coefficients
    (:func:`xdrs.sim.sums.dot`, the definition the reference path uses too)."""
    f[7, h], f[8, h] = _dot(hist[h], coef[0]), _dot(hist[h], coef[1])


@njit(cache=True)
def lr_rows(x: NDArray[np.float64], coef: NDArray[np.float64], a: NDArray[np.float64],
            b: NDArray[np.float64]) -> None:  # fmt: skip
    """``a[n], b[n]``: row ``n`` of ``x`` (N, L) dotted with the LR coefficients, as
    ``Planning._lr_terms`` computes them for all rows at once (:func:`xdrs.sim.sums.dot`)."""
    for n in range(x.shape[0]):
        a[n], b[n] = _dot(x[n], coef[0]), _dot(x[n], coef[1])


@njit(cache=True)
def create(
    h: int, v: int, r: float, f: NDArray[np.float64], hist: NDArray[np.float64],
    vm: NDArray[np.float64], terms: NDArray[np.float64], coef: NDArray[np.float64],
) -> bool:  # fmt: skip
    """Append VM ``v`` to the non-empty host ``h`` in place (rows of ``f`` as in
    :func:`find_host`); False, changing nothing, if ``h`` must be re-summed instead."""
    c = f[0, h] if r > f[0, h] else r
    if f[2, h] < c or f[2, h] == 0:
        return False
    f[2, h] -= c
    f[3, h] += c
    f[4, h] += r
    mips = f[1, h]
    for i in range(hist.shape[1]):
        hist[h, i] = hist[h, i] + terms[v, i] / mips
    f[9, h] -= vm[0, v]
    f[10, h] -= vm[1, v]
    f[5, h] = max(f[5, h], vm[0, v])
    lr_terms(f, hist, h, coef)
    f[11, h] = 1.0 if (f[11, h] != 0 or vm[4, v] != 0) else 0.0
    return True


@njit(cache=True)
def host_hist(
    rows: NDArray[np.int64], vm_of: NDArray[np.int64], terms: NDArray[np.float64],
    host_mips: NDArray[np.float64], hist: NDArray[np.float64],
) -> None:  # fmt: skip
    """``hist[rows]`` += each listed VM's ``terms`` / host MIPS, slot after slot (``vm_of``
    (R, K), -1 for none), as ``Planning._host_hist``; ``hist`` starts at 0."""
    for r in range(rows.size):
        h = rows[r]
        mips = host_mips[h]
        for j in range(vm_of.shape[1]):
            v = vm_of[r, j]
            if v < 0:
                continue
            for i in range(hist.shape[1]):
                hist[h, i] = hist[h, i] + terms[v, i] / mips


@njit(cache=True)
def place(
    order: NDArray[np.int64], start: int, hosts: NDArray[np.int64],
    excluded: NDArray[np.bool_], count: NDArray[np.int64], idle_now: NDArray[np.bool_],
    req: NDArray[np.float64], all_or_none: bool, dormant: NDArray[np.bool_],
    type_id: NDArray[np.int64], n_types: int, f: NDArray[np.float64],
    power: NDArray[np.float64], hist: NDArray[np.float64], vm: NDArray[np.float64],
    terms: NDArray[np.float64], kind: int, param: float, interval: float,
    memory_aware: bool, coef: NDArray[np.float64], host_ram: NDArray[np.float64],
    host_bw: NDArray[np.float64],
) -> int:  # fmt: skip
    """PABFD-place ``order[start:]`` one after the other (``Planning.place``): ``hosts[j]``
    gets each VM's target (-1: none). A VM created on an empty host is summed as a list
    of one (:func:`refresh`, as ``Planning.create``). A VM whose target must be re-summed
    from its list (over-subscribed) is left to the caller, as is the first VM without a
    target when ``all_or_none``: the index of that VM is returned (``order.size`` when
    all are done). ``count`` (H,) is each host's list length, kept up to date here."""
    one = np.empty(1, dtype=np.int64)
    for j in range(start, order.size):
        v = order[j]
        r = req[v]
        h = find_host(v, r, excluded, dormant, type_id, n_types, f, power, hist, vm, terms,
                      kind, param, interval, memory_aware)  # fmt: skip
        hosts[j] = h
        if h < 0:
            if all_or_none:
                return j
            continue
        if count[h] == 0:
            one[0] = v
            refresh(h, one, req, host_ram[h], host_bw[h], f, hist, vm, terms, coef)
        elif not create(h, v, r, f, hist, vm, terms, coef):
            return j
        count[h] += 1
        if idle_now[h]:
            dormant[h] = f[3, h] == 0
    return order.size


@njit(cache=True)
def refresh(
    h: int, ids: NDArray[np.int64], req: NDArray[np.float64], host_ram: float,
    host_bw: float, f: NDArray[np.float64], hist: NDArray[np.float64],
    vm: NDArray[np.float64], terms: NDArray[np.float64], coef: NDArray[np.float64],
) -> None:  # fmt: skip
    """Re-sum host ``h`` from its VM list ``ids`` (list order), as ``Planning.refresh``:
    the time-shared scheduler's free MIPS (0 when over-subscribed) and shares, the
    requests, the history and the LR terms."""
    total, pe = f[1, h], f[0, h]
    avail, over, wsum, reqsum = total, False, 0.0, 0.0
    max_ram = 0.0
    for v in ids:
        c = pe if req[v] > pe else req[v]
        over = over or avail < c
        avail -= c
        wsum += c
        reqsum += req[v]
        max_ram = max(max_ram, vm[0, v])
    alloc = 0.0
    for v in ids:
        c = pe if req[v] > pe else req[v]
        alloc += math.floor(c * (total / wsum)) if over else c
    f[2, h] = 0.0 if over else avail
    f[3, h], f[4, h], f[5, h] = alloc, reqsum, max_ram
    f[9, h] = host_ram - _seq_sum(vm[0][ids])
    f[10, h] = host_bw - _seq_sum(vm[1][ids])
    for i in range(hist.shape[1]):  # seq_sum of terms[ids] / total, column by column
        s = 0.0
        for v in ids:
            s += terms[v, i] / total
        hist[h, i] = s
    lr_terms(f, hist, h, coef)
    f[11, h] = 0.0
    for i in range(coef.shape[1] - 1, hist.shape[1]):
        if hist[h, i] != 0:
            f[11, h] = 1.0


@njit(cache=True)
def overloaded(
    h: int, kind: int, param: float, f: NDArray[np.float64], hist: NDArray[np.float64],
    interval: float,
) -> bool:  # fmt: skip
    """Is host ``h`` overloaded with the VMs on its list (``Planning.overloaded``)?"""
    util = f[4, h] / f[1, h]
    if kind == 0:
        return bool(util > param)
    if kind == 3:
        ahead = math.ceil(f[5, h] / (f[6, h] / (2 * 8000)) / interval)
        if f[11, h] != 0:
            return bool(param * (f[7, h] + ahead * f[8, h]) >= 1)
        return bool(util > _FALLBACK)
    thr = robust_threshold(hist[h], kind, param)
    if math.isnan(thr):
        return bool(util > _FALLBACK)
    return bool(util > thr)


@njit(cache=True)
def _schedule(
    row: NDArray[np.int64], e_vm: NDArray[np.int64], incoming: NDArray[np.bool_],
    req_vm: NDArray[np.float64], total: float, pe: float,
) -> tuple[bool, float, float]:  # fmt: skip
    """Over-subscription flag, free MIPS and weight sum of one host's list (slot order)."""
    avail, over, wsum = total, False, 0.0
    for i in row:
        if i < 0:
            break
        req = req_vm[e_vm[i]]
        c = pe if req > pe else req
        w = c * 0.1 if incoming[i] else c
        over = over or avail < w
        avail -= w
        wsum += w
    return over, avail, wsum


@njit(cache=True)
def _share(c: float, out: bool, inc: bool, over: bool, scale: float) -> float:
    """A VM's allocated MIPS: capped request ``c`` (90 % migrating out, 10 % in), scaled
    and floored on an over-subscribed host."""
    if over:
        if out:
            return float(np.floor(c * scale * 0.9))
        return float(np.floor(c * 0.1 * scale if inc else c * scale))
    return c * 0.9 if out else (c * 0.1 if inc else c)


@njit(cache=True)
def evaluate(
    rows: NDArray[np.int64], grid: NDArray[np.int64], e_vm: NDArray[np.int64],
    incoming: NDArray[np.bool_], req_vm: NDArray[np.float64],
    in_migration: NDArray[np.bool_], host_mips: NDArray[np.float64],
    host_pe: NDArray[np.float64], sums: NDArray[np.float64], per_entry: NDArray[np.float64],
) -> None:  # fmt: skip
    """``xdrs.sim.hosts.evaluate`` host by host: ``sums`` (4, H) gets utilisation,
    requested and allocated MIPS and free MIPS; ``per_entry`` (3, E) allocation, request
    and migrating-out flag (as 0/1), each in the reference's float order."""
    sums[3, :] = host_mips
    for r in range(rows.size):
        h = rows[r]
        total, pe = host_mips[h], host_pe[h]
        over, avail, wsum = _schedule(grid[r], e_vm, incoming, req_vm, total, pe)
        scale = total / wsum if over else 1.0  # wsum > 0 when over
        sums[3, h] = 0.0 if over else avail
        util, reqs, alloc_sum = 0.0, 0.0, 0.0
        for i in grid[r]:
            if i < 0:
                break
            req = req_vm[e_vm[i]]
            c = pe if req > pe else req
            out = in_migration[e_vm[i]] and not incoming[i]
            a = _share(c, out, incoming[i], over, scale)
            util += a / 0.9 if out else a
            reqs += req
            alloc_sum += a
            per_entry[0, i], per_entry[1, i], per_entry[2, i] = a, req, 1.0 if out else 0.0
        sums[0, h], sums[1, h], sums[2, h] = util, reqs, alloc_sum


@njit(cache=True)
def slots(
    host: NDArray[np.int64], seq: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``xdrs.sim.hosts.slots`` for at least one entry: occupied hosts (R,) and the (R, K)
    entry index of each list slot (-1 pads), ordered by host then ``seq`` (stable): the
    entries go to their host's row in entry order, then each row (a few entries) is
    insertion-sorted by ``seq``, which keeps ties in entry order."""
    counts = np.bincount(host)
    rank = np.full(counts.size, -1, dtype=np.int64)
    n_rows, width = 0, 0
    for h in range(counts.size):
        if counts[h] > 0:
            rank[h] = n_rows
            n_rows += 1
            width = max(width, counts[h])
    rows = np.empty(n_rows, dtype=np.int64)
    for h in range(counts.size):
        if rank[h] >= 0:
            rows[rank[h]] = h
    grid = np.full((n_rows, width), -1, dtype=np.int64)
    pos = np.zeros(n_rows, dtype=np.int64)
    for i in range(host.size):
        r = rank[host[i]]
        j = pos[r]
        while j > 0 and seq[grid[r, j - 1]] > seq[i]:  # strictly later: ties keep order
            grid[r, j] = grid[r, j - 1]
            j -= 1
        grid[r, j] = i
        pos[r] += 1
    return rows, grid


@njit(cache=True)
def relieve_mmt(
    h: int, ids: NDArray[np.int64], blocked: bool, in_migration: NDArray[np.bool_],
    req: NDArray[np.float64], host_ram: float, host_bw: float, f: NDArray[np.float64],
    hist: NDArray[np.float64], vm: NDArray[np.float64], terms: NDArray[np.float64],
    coef: NDArray[np.float64], kind: int, param: float, interval: float,
    out: NDArray[np.int64],
) -> int:  # fmt: skip
    """The overload phase of one host with MMT selection (``policies.optimize``): take the
    VM with the least memory (the first such in list order) among those of ``ids`` (the
    host's list) not migrating, re-sum the host without it (:func:`refresh`), until none
    is left or the host (unless ``blocked``) is no longer overloaded. The VMs taken go to
    ``out`` in order; returns how many."""
    keep = np.ones(ids.size, dtype=np.bool_)
    n = 0
    while True:
        best = -1
        for i in range(ids.size):
            movable = keep[i] and not in_migration[ids[i]]
            if movable and (best < 0 or vm[0, ids[i]] < vm[0, ids[best]]):
                best = i
        if best < 0:
            return n
        keep[best] = False
        out[n] = ids[best]
        n += 1
        refresh(h, ids[keep], req, host_ram, host_bw, f, hist, vm, terms, coef)
        if not blocked and not overloaded(h, kind, param, f, hist, interval):
            return n


@njit(cache=True)
def initial(
    vm_mips: NDArray[np.float64], vm_ram: NDArray[np.float64], vm_bw: NDArray[np.float64],
    host_pe: NDArray[np.float64], host_mips: NDArray[np.float64],
    host_ram: NDArray[np.float64], host_bw: NDArray[np.float64],
    table: NDArray[np.float64], pabfd: bool, threshold: float, host: NDArray[np.int64],
) -> int:  # fmt: skip
    """``policies.initial_placement``: VMs in order at full size, first fit (not ``pabfd``)
    or PABFD skipping non-empty hosts the VM alone would push over ``threshold``; ``host``
    (V,) gets each VM's host. Returns the first VM no host can take (``V`` if none)."""
    n_h = host_mips.size
    alloc = np.zeros(n_h)
    ram_free, bw_free = host_ram.copy(), host_bw.copy()
    for v in range(vm_mips.size):
        m = vm_mips[v]
        best, best_inc = -1, math.inf
        for h in range(n_h):
            if not (host_pe[h] >= m and host_mips[h] - alloc[h] >= m
                    and ram_free[h] >= vm_ram[v] and bw_free[h] >= vm_bw[v]):  # fmt: skip
                continue
            if not pabfd:
                best = h
                break
            if alloc[h] != 0 and m / host_mips[h] > threshold:
                continue
            after = min((alloc[h] + m) / host_mips[h], 1.0)
            inc = _power(after, table[h]) - _power(0.0, table[h])
            if inc < best_inc:
                best, best_inc = h, inc
        if best < 0:
            return v
        host[v] = best
        alloc[best] += m
        ram_free[best] -= vm_ram[v]
        bw_free[best] -= vm_bw[v]
    return vm_mips.size


@njit(cache=True)
def _drop(lists: NDArray[np.int64], count: NDArray[np.int64], h: int, v: int) -> None:
    """Remove VM ``v`` (listed once) from host ``h``'s list, keeping the others' order."""
    n = count[h]
    i = 0
    while lists[h, i] != v:
        i += 1
    lists[h, i : n - 1] = lists[h, i + 1 : n].copy()
    count[h] = n - 1


@njit(cache=True)
def _all_or_none(
    order: NDArray[np.int64], targets: NDArray[np.int64], excluded: NDArray[np.bool_],
    lists: NDArray[np.int64], count: NDArray[np.int64], idle_now: NDArray[np.bool_],
    req: NDArray[np.float64], dormant: NDArray[np.bool_], type_id: NDArray[np.int64],
    n_types: int, f: NDArray[np.float64], power: NDArray[np.float64],
    hist: NDArray[np.float64], vm: NDArray[np.float64], terms: NDArray[np.float64],
    kind: int, param: float, interval: float, memory_aware: bool, coef: NDArray[np.float64],
    host_ram: NDArray[np.float64], host_bw: NDArray[np.float64],
) -> bool:  # fmt: skip
    """``Planning.place`` of ``order`` with ``all_or_none``, host lists in ``lists`` (H, K)
    (``count`` long): each VM created on its target (appended, summed in place or re-summed
    as ``Planning.create``); a VM without a target undoes the others (``Planning.destroy``
    in placement order) and returns False."""
    for j in range(order.size):
        v = order[j]
        t = find_host(v, req[v], excluded, dormant, type_id, n_types, f, power, hist, vm,
                      terms, kind, param, interval, memory_aware)  # fmt: skip
        targets[j] = t
        if t < 0:
            for i in range(j):
                h = targets[i]
                _drop(lists, count, h, order[i])
                refresh(h, lists[h, : count[h]], req, host_ram[h], host_bw[h], f, hist, vm,
                        terms, coef)  # fmt: skip
                if idle_now[h]:
                    dormant[h] = f[3, h] == 0
            return False
        lists[t, count[t]] = v
        count[t] += 1
        if count[t] == 1 or not create(t, v, req[v], f, hist, vm, terms, coef):
            refresh(t, lists[t, : count[t]], req, host_ram[t], host_bw[t], f, hist, vm, terms,
                    coef)  # fmt: skip
        if idle_now[t]:
            dormant[t] = f[3, t] == 0
    return True


@njit(cache=True)
def underload(
    hosts: NDArray[np.int64], skip: NDArray[np.bool_], excluded: NDArray[np.bool_],
    incoming: NDArray[np.bool_], in_migration: NDArray[np.bool_], lists: NDArray[np.int64],
    count: NDArray[np.int64], idle_now: NDArray[np.bool_], req: NDArray[np.float64],
    dormant: NDArray[np.bool_], type_id: NDArray[np.int64], n_types: int,
    f: NDArray[np.float64], power: NDArray[np.float64], hist: NDArray[np.float64],
    vm: NDArray[np.float64], terms: NDArray[np.float64], kind: int, param: float,
    interval: float, memory_aware: bool, coef: NDArray[np.float64],
    host_ram: NDArray[np.float64], host_bw: NDArray[np.float64],
    out_vm: NDArray[np.int64], out_host: NDArray[np.int64],
) -> int:  # fmt: skip
    """The under-load phase (``policies._underloaded``): try to empty each of ``hosts`` in
    turn, all its VMs (by decreasing request, stable) or none, skipping hosts with a
    migration under way; the moves go to ``out_vm``/``out_host`` in order; returns how
    many. ``lists`` (H, K) holds each host's VM list (``count`` long) with room to grow."""
    n_out = 0
    for h in hosts:
        if skip[h]:
            continue
        skip[h] = excluded[h] = True
        n = count[h]
        if n == 0 or incoming[h] or in_migration[lists[h, :n]].any():
            continue  # CloudSim skips hosts with migrations under way
        ids = lists[h, :n].copy()
        order = ids[np.argsort(-req[ids], kind="mergesort")]
        targets = np.empty(n, dtype=np.int64)
        if not _all_or_none(order, targets, excluded, lists, count, idle_now, req, dormant,
                            type_id, n_types, f, power, hist, vm, terms, kind, param,
                            interval, memory_aware, coef, host_ram, host_bw):  # fmt: skip
            continue
        for j in range(n):
            skip[targets[j]] = True
            out_vm[n_out], out_host[n_out] = order[j], targets[j]
            n_out += 1
    return n_out


@njit(cache=True)
def push_history(u: NDArray[np.float64], hist: NDArray[np.float64],
                 length: NDArray[np.int64]) -> None:  # fmt: skip
    """``Engine.push_history``: each VM's non-zero utilisation ``u`` goes first in its
    history row (the others shift right by one, the oldest drops), its ``length`` counts
    up to the row's width; a VM at 0 keeps its row."""
    width = hist.shape[1]
    for v in range(u.size):
        if u[v] == 0:
            continue
        for i in range(width - 1, 0, -1):
            hist[v, i] = hist[v, i - 1]
        hist[v, 0] = u[v]
        length[v] = min(length[v] + 1, width)


@njit(cache=True)
def vm_record(
    t: float, idx: NDArray[np.int64], alloc: NDArray[np.float64], req: NDArray[np.float64],
    flag: NDArray[np.bool_], last_t: NDArray[np.float64], last_alloc: NDArray[np.float64],
    last_req: NDArray[np.float64], last_flag: NDArray[np.bool_], out: NDArray[np.float64],
) -> int:  # fmt: skip
    """``record.VmRecorder.record``'s element-wise part: ``out`` (3, E) gets each entry's
    requested and allocated MIPS x s since its series' last entry and, compacted in entry
    order, the shortfall x s of those short while migrating (their number is returned);
    then entries ``idx`` (unique) become the last ones. numpy sums the rows (same order)."""
    n_short = 0
    for i in range(idx.size):
        v = idx[i]
        dt = t - last_t[v] if last_t[v] >= 0 else 0.0
        a, r = last_alloc[v], last_req[v]
        out[0, i], out[1, i] = r * dt, a * dt
        if a < r and last_flag[v]:
            out[2, n_short] = (r - a) * dt
            n_short += 1
    for i in range(idx.size):
        v = idx[i]
        last_t[v], last_alloc[v], last_req[v], last_flag[v] = t, alloc[i], req[i], flag[i]
    return n_short


@njit(cache=True)
def host_record(
    t: float, alloc: NDArray[np.float64], req: NDArray[np.float64],
    active: NDArray[np.bool_], last_t: NDArray[np.float64], last_alloc: NDArray[np.float64],
    last_req: NDArray[np.float64], last_flag: NDArray[np.bool_], out: NDArray[np.float64],
) -> tuple[int, int]:  # fmt: skip
    """``record.HostRecorder.record``'s element-wise part: ``out`` (2, H) gets, compacted in
    host order, the seconds since the last entry of the hosts active then, and of those
    short then (allocated < requested); their numbers are returned. Then every host's
    entry becomes the last one. numpy sums the rows (same order)."""
    n_live, n_short = 0, 0
    for h in range(alloc.size):
        if last_flag[h]:
            dt = t - last_t[h] if last_t[h] >= 0 else 0.0
            out[0, n_live] = dt
            n_live += 1
            if last_alloc[h] < last_req[h]:
                out[1, n_short] = dt
                n_short += 1
        last_t[h], last_alloc[h], last_req[h], last_flag[h] = t, alloc[h], req[h], active[h]
    return n_live, n_short


@njit(cache=True)
def energy(u0: NDArray[np.float64], p0: NDArray[np.float64], p1: NDArray[np.float64],
           dt: float, out: NDArray[np.float64]) -> None:  # fmt: skip
    """``Engine.account``'s per-host energy (W s) over ``dt``: the trapezoid of the power at
    both ends, 0 for a host idle at the start. numpy sums ``out``."""
    for h in range(u0.size):
        out[h] = 0.0 if u0[h] == 0 else (p0[h] + (p1[h] - p0[h]) / 2) * dt


@njit(cache=True)
def setup_lists(
    rows: NDArray[np.int64], grid: NDArray[np.int64], e_vm: NDArray[np.int64],
    e_incoming: NDArray[np.bool_], e_host: NDArray[np.int64], alive: NDArray[np.bool_],
    vm_host: NDArray[np.int64], vm_ram: NDArray[np.float64], vm_bw: NDArray[np.float64],
    host_ram: NDArray[np.float64], host_bw: NDArray[np.float64], vm_of: NDArray[np.int64],
    incoming: NDArray[np.bool_], count: NDArray[np.int64], f: NDArray[np.float64],
) -> None:  # fmt: skip
    """``Planning.__init__``'s lists (the numpy path's operations, in their order):
    ``vm_of`` (R, K) the VM in each list slot (-1: padding or an in-flight entry),
    ``count`` each host's list length, ``incoming`` the hosts an in-flight entry goes to;
    rows 9/10 of ``f`` free memory and network (the running VMs' sums in VM order, as
    ``np.bincount``), row 5 the largest running VM's memory."""
    for r in range(grid.shape[0]):
        n = 0
        for j in range(grid.shape[1]):
            i = grid[r, j]
            vm_of[r, j] = e_vm[i] if i >= 0 and not e_incoming[i] else -1
            n += vm_of[r, j] >= 0
        count[rows[r]] = n
    for i in range(e_host.size):
        if e_incoming[i]:
            incoming[e_host[i]] = True
    ram, bw = np.zeros(host_ram.size), np.zeros(host_ram.size)
    for v in range(alive.size):
        if alive[v]:
            h = vm_host[v]
            ram[h] += vm_ram[v]
            bw[h] += vm_bw[v]
            f[5, h] = max(f[5, h], vm_ram[v])
    for h in range(host_ram.size):
        f[9, h], f[10, h] = host_ram[h] - ram[h], host_bw[h] - bw[h]
