"""The planning copy of the data centre a CloudSim-style policy works on during one decision.

Mirrors what ``PowerVmAllocationPolicyMigrationAbstract.optimizeAllocation`` sees: host VM
lists (VMs can be destroyed on overloaded hosts and created on targets while planning),
each host's scheduler state, requested MIPS, utilisation history, free memory and network.
Host utilisation for power (``util_now``) stays as measured at the start of the decision,
as in CloudSim.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from itertools import chain
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from placement.overload import FALLBACK_THRESHOLD, LR_WINDOW, overloaded, trimmed_length
from placement.pabfd import choose, sort_decreasing, suitable
from placement.power import spec_power, spec_power_rows
from xdrs.sim.engine import Context
from xdrs.sim.fast import DETECTOR_CODES, kernel_module
from xdrs.sim.hosts import utilisation
from xdrs.sim.setup import World
from xdrs.sim.sums import dot, seq_sum

__all__ = ["Planning"]

FloatA = NDArray[np.float64]
BoolA = NDArray[np.bool_]
IntA = NDArray[np.int64]


@dataclass(frozen=True)
class _Candidates:
    """Hosts scored by ``find_host`` and their static columns, cached per exclusion set."""

    key: object
    version: int
    hosts: IntA
    pe: FloatA
    mips: FloatA
    power_flat: FloatA
    power_base: IntA
    power_now: FloatA


class _Lists(dict[int, list[int]]):
    """Host -> its VM list (list order); a host not listed yet has an empty list, made
    when first asked for (most hosts of a consolidated data centre are empty)."""

    def __missing__(self, h: int) -> list[int]:
        out: list[int] = []
        self[h] = out
        return out


def _host_lists(rows: IntA, vm_of: IntA) -> _Lists:
    """Each host's VM list from ``vm_of`` (R, K), -1 for no VM, one row per host in
    ``rows``: one ``tolist`` and a slice per host (no per-host numpy call)."""
    out = _Lists()
    keep = vm_of >= 0
    flat = vm_of[keep].tolist()
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    start = 0
    for h, end in zip(rows.tolist(), ends, strict=True):
        out[h] = flat[start:end]
        start = end
    return out


def _lr_coefficients() -> tuple[FloatA, FloatA]:
    """The LR intercept and slope coefficients of the history columns (newest first): the
    OLS prediction is linear in the last 10 samples."""
    x = np.arange(1.0, LR_WINDOW + 1)
    xc = x - x.mean()
    sxx = seq_sum(xc * xc)  # 82.5 exactly (halves squared)
    a = 1 / LR_WINDOW + xc * (LR_WINDOW - x.mean()) / sxx
    b = xc / sxx
    # column i of the history (newest first) is x = 10 - i
    return a[::-1].copy(), b[::-1].copy()


@dataclass(frozen=True)
class _Static:
    """What a decision's planning takes from the world alone (built once per world)."""

    world: weakref.ref[World]  # not kept alive by this cache
    types: list[IntA]  # the hosts of each type
    type_id: IntA  # (H,) index of each host's type
    host_ram: FloatA  # (H,) as float64 for the kernels
    host_bw: FloatA
    vm_ram: FloatA  # (V,) as float64 for the kernels
    vm_bw: FloatA


_STATIC: list[_Static] = []  # one slot: the world of the run under way


def _static(w: World) -> _Static:
    if _STATIC and _STATIC[0].world() is w:
        return _STATIC[0]
    kinds, type_id = np.unique(w.host_type, return_inverse=True)
    f64 = np.float64
    st = _Static(
        weakref.ref(w), [np.flatnonzero(w.host_type == k) for k in kinds], type_id.astype(np.int64),
        w.host_ram.astype(f64, copy=False), w.host_bw.astype(f64, copy=False),
        w.vm_ram.astype(f64, copy=False), w.vm_bw.astype(f64, copy=False),
    )  # fmt: skip
    _STATIC[:] = [st]
    return st


UNDERLOAD_CELLS = 1 << 25  # 256 MiB of int64: the compiled under-load phase's list array


class Planning:
    """Mutable per-decision copy; ``detector`` is ``(kind, parameter)``."""

    COEF_A, COEF_B = _lr_coefficients()

    def __init__(self, ctx: Context, detector: tuple[str, float]) -> None:
        w, st = ctx.world, ctx.state
        self.ctx, self.w, self.req = ctx, w, ctx.req
        self.kind, self.param = detector
        self.kernel = kernel_module()
        self.static = _static(w)
        self.types = self.static.types
        # per-host rows in one matrix (the compiled search reads it whole; see kernel.py)
        self.f = f = np.zeros((12, w.n_hosts))
        f[0], f[1], f[6] = w.host_pe, w.host_mips, w.host_bw
        self.avail, self.alloc, self.reqsum = f[2], f[3], f[4]
        self.max_ram, self.lr_a, self.lr_b = f[5], f[7], f[8]
        self.ram_free, self.bw_free, self.len10 = f[9], f[10], f[11]
        self.alloc[:] = st.alloc_mips
        self.avail[:] = st.avail
        self.reqsum[:] = st.req_mips
        self.incoming = np.zeros(w.n_hosts, dtype=bool)
        self.count = np.zeros(w.n_hosts, dtype=np.int64)  # length of each host's VM list
        vm_of = self._lists_numpy() if self.kernel is None else self._lists_compiled(self.kernel)
        rows = st.rows
        self.vms = _host_lists(rows, vm_of)
        # hosts with nothing allocated and idle at the start: interchangeable within a type
        self.dormant = (self.alloc == 0) & (self.util_now == 0)
        self._idle_now: list[bool] = (self.util_now == 0).tolist()
        self.dormant_version = 0
        self._cand: _Candidates | None = None
        self.terms = ctx.vm_hist * w.vm_mips[:, None]  # history x MIPS, divided per host
        self.hist = np.zeros((w.n_hosts, ctx.vm_hist.shape[1]))
        if self.kernel is not None:
            self.kernel.host_hist(rows, vm_of, self.terms, w.host_mips, self.hist)
        else:
            self.hist[rows] = self._host_hist(rows, vm_of)
        self._lr_init()
        if self.kernel is not None:
            self._kernel_args(self.kernel)

    def _lists_numpy(self) -> IntA:
        """The reference path of :meth:`_lists_compiled`."""
        ctx, w, st = self.ctx, self.w, self.ctx.state
        grid, e = st.grid, ctx.entries
        g = np.maximum(grid, 0)
        vm_of = np.where((grid >= 0) & ~e.incoming[g], e.vm[g], -1)  # in-flight entries: -1
        self.incoming[e.host[e.incoming]] = True
        self.count[st.rows] = (vm_of >= 0).sum(axis=1)
        on = ctx.host[ctx.alive]
        self.ram_free[:] = w.host_ram - np.bincount(on, w.vm_ram[ctx.alive], w.n_hosts)
        self.bw_free[:] = w.host_bw - np.bincount(on, w.vm_bw[ctx.alive], w.n_hosts)
        np.maximum.at(self.max_ram, on, w.vm_ram[ctx.alive])
        self.util_now = np.minimum(utilisation(st.util_mips, w.host_mips), 1.0)
        self.power_now = spec_power(self.util_now, w.host_power)
        return vm_of

    def _lists_compiled(self, k: ModuleType) -> IntA:
        """(R, K) the VM in each list slot of the occupied hosts (-1: none or in flight);
        sets ``incoming``, ``count``, free memory and network, the largest VM's memory,
        ``util_now`` and ``power_now`` (CloudSim's at the decision's start)."""
        ctx, w, st, sw = self.ctx, self.w, self.ctx.state, self.static
        e = ctx.entries
        vm_of = np.empty_like(st.grid)
        k.setup_lists(
            st.rows, st.grid, e.vm, e.incoming, e.host, ctx.alive, ctx.host, sw.vm_ram,
            sw.vm_bw, sw.host_ram, sw.host_bw, vm_of, self.incoming, self.count, self.f,
        )  # fmt: skip
        u = np.empty(w.n_hosts)
        self.power_now = k.power_at(st.util_mips, w.host_mips, w.host_power, u)
        self.util_now = np.minimum(u, 1.0)
        return vm_of

    def _kernel_args(self, k: ModuleType) -> None:
        """The kernels' arguments that stay the same objects for the whole decision
        (arrays are changed in place): built once, not at each of ~100 calls."""
        w = self.w
        self.type_id = self.static.type_id
        self.n_types = len(self.static.types)
        self.power = np.column_stack([w.host_power, self.power_now])
        self.vm_cols = np.vstack([w.vm_ram, w.vm_bw, self.vm_a, self.vm_b, self.vm_long])
        code = DETECTOR_CODES[self.kind]
        self._find_args = (
            self.dormant, self.type_id, self.n_types, self.f, self.power, self.hist,
            self.vm_cols, self.terms, code, self.param, w.interval, w.memory_aware,
        )  # fmt: skip
        self._create_args = (self.f, self.hist, self.vm_cols, self.terms, self.coef)
        self._place_tail = (self.coef, self.static.host_ram, self.static.host_bw)
        self._idle_arr = self.util_now == 0

    def _host_hist(self, rows: IntA, vm_of: IntA) -> FloatA:
        """(R, L) history of the hosts ``rows``: their VMs' terms / host MIPS, added one
        list slot after another like CloudSim (``kernel.host_hist`` does the same)."""
        acc = np.zeros((rows.size, self.terms.shape[1]))
        mips = self.w.host_mips[rows, None]
        for j in range(vm_of.shape[1]):  # K slots; a padding slot adds 0.0 (exact)
            col = vm_of[:, j]
            acc = acc + np.where(col[:, None] >= 0, self.terms[np.maximum(col, 0)] / mips, 0.0)
        return acc

    # -- LR fast path: the OLS prediction is linear in the last 10 samples -------------
    # The terms are xdrs.sim.sums.dot of the history and the coefficients, in both paths
    # (a BLAS product here would make the decisions depend on the machine's BLAS kernel).
    def _lr_init(self) -> None:
        self.coef_a, self.coef_b = self.COEF_A, self.COEF_B
        self.coef = np.vstack([self.coef_a, self.coef_b])
        if (k := self.kernel) is not None:  # the same sums.dot, compiled
            self.vm_a, self.vm_b = np.zeros(self.terms.shape[0]), np.zeros(self.terms.shape[0])
            k.lr_rows(self.hist, self.coef, self.lr_a, self.lr_b)
            k.lr_rows(self.terms, self.coef, self.vm_a, self.vm_b)
        else:
            self.lr_a[:], self.lr_b[:] = self._lr_terms(self.hist.T)
            self.vm_a, self.vm_b = self._lr_terms(self.terms.T)
        self.len10[:] = (self.hist[:, LR_WINDOW - 1 :] != 0).any(axis=1)
        self.vm_long = self.ctx.vm_hist_len >= LR_WINDOW

    def _lr_terms(self, hist_t: FloatA) -> tuple[FloatA, FloatA]:
        """Intercept and slope terms of each column of ``hist_t`` (S, N), newest first."""
        return np.asarray(dot(hist_t, self.coef_a)), np.asarray(dot(hist_t, self.coef_b))

    def _lr_with(self, v: int, hosts: IntA, util: FloatA) -> BoolA:
        w = self.w
        t = w.host_mips[hosts]
        ahead = self.steps_ahead(hosts, np.maximum(self.max_ram[hosts], w.vm_ram[v]))
        pred = (self.lr_a[hosts] + self.vm_a[v] / t) + ahead * (self.lr_b[hosts] + self.vm_b[v] / t)
        if self.vm_long[v]:
            return np.asarray(self.param * pred >= 1)
        return np.where(self.len10[hosts], self.param * pred >= 1, util > FALLBACK_THRESHOLD)

    # -- detector ----------------------------------------------------------------------
    def steps_ahead(self, hosts: IntA, max_ram: FloatA) -> IntA:
        w = self.w
        secs = max_ram / (w.host_bw[hosts] / (2 * 8000))
        return np.ceil(secs / w.interval).astype(np.int64)

    def overloaded(self, hosts: IntA) -> BoolA:
        """Is each host overloaded now (with the VMs on its list)?"""
        util = self.reqsum[hosts] / self.w.host_mips[hosts]
        ahead = self.steps_ahead(hosts, self.max_ram[hosts])
        if self.kind == "thr":
            return np.asarray(util > self.param)
        if self.kind in ("lr", "lrr"):
            pred = self.lr_a[hosts] + ahead * self.lr_b[hosts]
            lr = np.where(self.len10[hosts], self.param * pred >= 1, util > FALLBACK_THRESHOLD)
            return np.asarray(lr, dtype=bool)
        h = self.hist[hosts]
        return overloaded(self.kind, self.param, h, trimmed_length(h), util, steps_ahead=ahead)

    def overloaded_one(self, h: int) -> bool:
        """:meth:`overloaded` of the single host ``h``."""
        if (k := self.kernel) is not None:
            code = DETECTOR_CODES[self.kind]
            return bool(k.overloaded(h, code, self.param, self.f, self.hist, self.w.interval))
        return bool(self.overloaded(np.array([h]))[0])

    def overloaded_with(self, v: int, hosts: IntA) -> BoolA:
        """Would each host be overloaded with VM ``v`` added at the end of its list?"""
        w = self.w
        util = (self.reqsum[hosts] + self.req[v]) / w.host_mips[hosts]
        if self.kind == "thr":
            return np.asarray(util > self.param)
        if self.kind in ("lr", "lrr"):
            return self._lr_with(v, hosts, util)
        h = self.hist[hosts] + self.terms[v] / w.host_mips[hosts, None]
        ahead = self.steps_ahead(hosts, np.maximum(self.max_ram[hosts], w.vm_ram[v]))
        return overloaded(self.kind, self.param, h, trimmed_length(h), util, steps_ahead=ahead)

    # -- host lists --------------------------------------------------------------------
    def refresh(self, h: int) -> None:
        """Recompute host ``h``'s scheduler state and sums from its VM list (list order)."""
        w = self.w
        ids = np.array(self.vms[h], dtype=np.int64)
        if (k := self.kernel) is not None:
            k.refresh(
                h, ids, self.req, float(w.host_ram[h]), float(w.host_bw[h]), self.f, self.hist,
                self.vm_cols, self.terms, self.coef,
            )  # fmt: skip
            self._dormant(h)
            return
        total, pe = w.host_mips[h], w.host_pe[h]
        req = self.req[ids]
        caps = np.where(req > pe, pe, req)
        avail = np.cumsum(np.concatenate([[total], -caps]))
        over = bool((avail[:-1] < caps).any())
        wsum = float(seq_sum(caps))
        alloc = np.floor(caps * (total / wsum)) if over else caps
        hist = np.zeros(self.hist.shape[1]) + seq_sum(self.terms[ids] / total)
        self.avail[h] = 0.0 if over else avail[-1]
        self.alloc[h] = seq_sum(alloc)
        self.reqsum[h] = seq_sum(req)
        self.hist[h] = hist
        self.ram_free[h] = w.host_ram[h] - seq_sum(w.vm_ram[ids])
        self.bw_free[h] = w.host_bw[h] - seq_sum(w.vm_bw[ids])
        self.max_ram[h] = w.vm_ram[ids].max() if ids.size else 0.0
        self._dormant(h)
        self.lr_a[h], self.lr_b[h] = self._lr_terms(hist)
        self.len10[h] = bool((hist[LR_WINDOW - 1 :] != 0).any())

    def _dormant(self, h: int) -> None:
        if not self._idle_now[h]:  # busy at the start: never dormant
            return
        dormant = self.alloc[h] == 0
        if dormant != self.dormant[h]:
            self.dormant[h] = dormant
            self.dormant_version += 1

    def relieve_mmt(self, h: int, blocked: bool) -> list[int]:
        """Compiled overload phase of host ``h`` with MMT selection (see
        ``kernel.relieve_mmt``); the VMs taken off its list, in order. Kernel path only."""
        k, w = self.kernel, self.w
        assert k is not None
        ids = np.array(self.vms[h], dtype=np.int64)
        out = np.empty(ids.size, dtype=np.int64)
        n = k.relieve_mmt(
            h, ids, blocked, self.ctx.in_migration, self.req, float(w.host_ram[h]),
            float(w.host_bw[h]), self.f, self.hist, self.vm_cols, self.terms, self.coef,
            DETECTOR_CODES[self.kind], self.param, w.interval, out,
        )  # fmt: skip
        gone: list[int] = out[:n].tolist()
        for v in gone:
            self.vms[h].remove(v)
        self.count[h] -= n
        self._dormant(h)
        return gone

    def underload_fits(self) -> bool:
        """Does :meth:`underload`'s (H, K) list array stay under ``UNDERLOAD_CELLS``? (K is
        the longest list plus all listed VMs; a very large world takes the Python loop.)"""
        listed = int(self.count.sum())
        return self.w.n_hosts * (int(self.count.max(initial=0)) + listed) <= UNDERLOAD_CELLS

    def underload(self, hosts: IntA, skip: BoolA, excluded: BoolA) -> list[tuple[int, int]]:
        """Compiled under-load phase over ``hosts`` in order (``kernel.underload``; see
        ``policies._underloaded``); the moves. The host lists are left stale (the phase is
        the decision's last). Kernel path only."""
        k = self.kernel
        assert k is not None
        lists, total = self._list_grid()
        out_vm, out_host = np.empty(total, dtype=np.int64), np.empty(total, dtype=np.int64)
        n = k.underload(
            hosts, skip, excluded, self.incoming, self.ctx.in_migration, lists, self.count,
            self._idle_arr, self.req, *self._find_args, *self._place_tail, out_vm, out_host,
        )  # fmt: skip
        return list(zip(out_vm[:n].tolist(), out_host[:n].tolist(), strict=True))

    def _list_grid(self) -> tuple[IntA, int]:
        """The host lists as an (H, K) array (``count`` long each) with room for every
        listed VM to be appended to any one list; and the number of listed VMs."""
        hosts = [h for h, vms in self.vms.items() if vms]
        lens = np.array([len(self.vms[h]) for h in hosts], dtype=np.int64)
        total = int(lens.sum())
        lists = np.empty((self.w.n_hosts, int(lens.max(initial=0)) + total), dtype=np.int64)
        if total:
            flat = np.fromiter(chain.from_iterable(self.vms[h] for h in hosts), np.int64, total)
            starts = np.cumsum(lens) - lens
            pos = np.arange(total) - np.repeat(starts, lens)
            lists[np.repeat(np.array(hosts, dtype=np.int64), lens), pos] = flat
        return lists, total

    def destroy(self, h: int, v: int) -> None:
        self.vms[h].remove(v)
        self.count[h] -= 1
        self.refresh(h)

    def place(
        self, vms: list[int], excluded: BoolA, all_or_none: bool, key: object
    ) -> list[tuple[int, int]]:
        """PABFD-place ``vms`` by decreasing request (CloudSim's placement of a VM list):
        each on :meth:`find_host`'s target, created there at once; ``all_or_none``: a VM
        without a target undoes the others and nothing is placed. ``key`` names
        ``excluded``'s content (see :meth:`candidates`). Returns (VM, host) pairs."""
        ids = np.array(vms, dtype=np.int64)
        order = ids[sort_decreasing(self.req[ids])]
        if self.kernel is None:
            return self._place_numpy(order, excluded, all_or_none, key)
        hosts = np.full(order.size, -1, dtype=np.int64)
        start = 0
        while start < order.size:
            j = int(self.kernel.place(order, start, hosts, excluded, self.count,
                                      self._idle_arr, self.req, all_or_none, *self._find_args,
                                      *self._place_tail))  # fmt: skip
            stop = min(j, order.size)
            for v, h in zip(order[start:stop].tolist(), hosts[start:stop].tolist(), strict=True):
                if h >= 0:  # created by the kernel: the list follows
                    self.vms[h].append(v)
            if j == order.size:
                break
            if hosts[j] < 0:  # all or none, and this VM has no target
                self._undo(order[:j], hosts[:j])
                return []
            self.create(int(hosts[j]), int(order[j]))
            start = j + 1
        return [(v, h) for v, h in zip(order.tolist(), hosts.tolist(), strict=True) if h >= 0]

    def _undo(self, order: IntA, hosts: IntA) -> None:
        for v, h in zip(order.tolist(), hosts.tolist(), strict=True):
            if h >= 0:
                self.destroy(h, v)

    def _place_numpy(
        self, order: IntA, excluded: BoolA, all_or_none: bool, key: object
    ) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for v in order.tolist():
            d = self.find_host(v, excluded, key)
            if d >= 0:
                self.create(d, v)
                out.append((v, d))
            elif all_or_none:
                for v2, d2 in out:
                    self.destroy(d2, v2)
                return []
        return out

    def create(self, h: int, v: int) -> None:
        """Append ``v`` to host ``h``'s list, updating the sums in place (same order and
        float operations as :meth:`refresh`; over-subscription recomputes everything)."""
        was_empty = not self.vms[h]
        self.vms[h].append(v)
        self.count[h] += 1
        if (k := self.kernel) is not None:
            if was_empty or not k.create(h, v, float(self.req[v]), *self._create_args):
                self.refresh(h)
            else:
                self._dormant(h)
            return
        w = self.w
        r = self.req[v]
        c = w.host_pe[h] if r > w.host_pe[h] else r
        if was_empty or self.avail[h] < c or self.avail[h] == 0:
            self.refresh(h)
            return
        self.avail[h] -= c
        self.alloc[h] += c
        self.reqsum[h] += r
        hist = self.hist[h] + self.terms[v] / w.host_mips[h]
        self.hist[h] = hist
        self.ram_free[h] -= w.vm_ram[v]
        self.bw_free[h] -= w.vm_bw[v]
        self.max_ram[h] = max(self.max_ram[h], w.vm_ram[v])
        self.lr_a[h], self.lr_b[h] = self._lr_terms(hist)
        self.len10[h] = bool(self.len10[h] or self.vm_long[v])
        self._dormant(h)

    # -- placement ---------------------------------------------------------------------
    def candidates(self, excluded: BoolA, key: object = None) -> _Candidates:
        """Hosts worth scoring, in index order: every non-dormant host plus the first
        non-excluded dormant host of each type (the others would tie with it and lose).

        ``key`` identifies the content of ``excluded`` for the cache (default: its bytes);
        callers that mutate ``excluded`` pass a new key each time."""
        key = excluded.tobytes() if key is None else key
        cached = self._cand
        if cached is not None and cached.key == key and cached.version == self.dormant_version:
            return cached
        firsts = []
        for idx in self.types:
            free = self.dormant[idx] & ~excluded[idx]
            if free.any():
                firsts.append(idx[np.argmax(free)])
        live = np.flatnonzero(~self.dormant & ~excluded)
        c = np.sort(np.concatenate([live, np.array(firsts, dtype=np.int64)]))
        w = self.w
        table = w.host_power[c]
        base = np.arange(0, table.size, table.shape[1], dtype=np.int64)
        self._cand = _Candidates(
            key, self.dormant_version, c, w.host_pe[c], w.host_mips[c], table.ravel(), base,
            self.power_now[c],
        )  # fmt: skip
        return self._cand

    def find_host(self, v: int, excluded: BoolA, key: object = None) -> int:
        """PABFD target of ``v`` (CloudSim ``findHostForVm``), -1 if none."""
        if (k := self.kernel) is not None:
            return int(k.find_host(v, float(self.req[v]), excluded, *self._find_args))
        return self.find_host_numpy(v, excluded, key)

    def find_host_numpy(self, v: int, excluded: BoolA, key: object = None) -> int:
        """The reference (pure numpy) path of :meth:`find_host`."""
        w, r = self.w, float(self.req[v])
        cs = self.candidates(excluded, key)
        c = cs.hosts
        alloc = self.alloc[c]
        if w.memory_aware:
            ram, bw = w.vm_ram[v], w.vm_bw[v]
            ok = suitable(r, ram, bw, cs.pe, self.avail[c], self.ram_free[c], self.bw_free[c])
        else:  # never short: see Datacenter.memory_aware
            ok = (cs.pe >= r) & (self.avail[c] >= r)
        check = np.flatnonzero(ok & (alloc != 0))
        if check.size:
            ok[check] &= ~self.overloaded_with(v, c[check])
        after = np.minimum((alloc + r) / cs.mips, 1.0)
        inc = spec_power_rows(after, cs.power_flat, cs.power_base) - cs.power_now
        i = choose(inc, ok)
        return int(c[i]) if i >= 0 else -1
