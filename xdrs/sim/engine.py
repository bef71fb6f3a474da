"""The discrete-time simulator: decision steps every ``interval`` plus migration completions.

Timeline (CloudSim 3.0.3's PowerDatacenter): decisions at ``start + k * interval``
(k = 1, 2, ... while within the trace); at each decision every host is updated (energy of
the elapsed interval, state-history entries), the policy returns migrations, each starts
at once and completes after ``memory / (bandwidth / 2)``. At a completion every host is
updated again (energy up to then), the VM moves, and hosts are re-evaluated. Energy of a
host over an interval is the trapezoid of its power at the two ends, and 0 if the host
was idle (switched off) at the start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from placement.power import spec_power
from xdrs.sim.fast import kernel_module
from xdrs.sim.hosts import (
    Entries,
    HostState,
    evaluate,
    evaluate_compiled,
    slots,
    slots_compiled,
    utilisation,
)
from xdrs.sim.record import HostRecorder, VmRecorder
from xdrs.sim.setup import World

__all__ = ["Context", "Engine", "Moves", "Placer", "Series"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]
Moves = Sequence[tuple[int, int]]
# (world, arriving VMs, placement, running VMs, blocked hosts) -> host per VM (-1: none)
Placer = Callable[[World, IntA, IntA, NDArray[np.bool_], NDArray[np.bool_]], IntA]


@dataclass(frozen=True)
class Context:
    """What a policy sees at a decision: time, requests (V,) MIPS, host state, placement."""

    t: float
    step: int
    req: FloatA
    state: HostState
    host: IntA
    alive: NDArray[np.bool_]  # VMs still running (CloudSim drops a VM whose request is 0)
    entries: Entries
    vm_hist: FloatA  # (V, L) utilisation history, newest first (non-zero samples only)
    vm_hist_len: IntA
    world: World
    blocked: NDArray[np.bool_]  # (H,) hosts in maintenance: empty them, place nothing there
    in_migration: NDArray[np.bool_]  # (V,) VMs still migrating (longer than an interval)


@dataclass
class Series:
    """Per-decision series for plots: time (s), active hosts, energy so far (kWh), ..."""

    t: list[float] = field(default_factory=list)
    active: list[int] = field(default_factory=list)
    energy_kwh: list[float] = field(default_factory=list)
    migrations: list[int] = field(default_factory=list)
    mean_load: list[float] = field(default_factory=list)
    max_load: list[float] = field(default_factory=list)
    overloaded: list[int] = field(default_factory=list)
    slatah: list[float] = field(default_factory=list)  # running SLATAH so far


class Engine:
    """One run. ``decide(ctx) -> moves`` is the policy (None: no migrations).

    ``power_aware=False`` is CloudSim's non-power-aware data centre (NPA): every host draws
    its maximum power all the time. ``place`` places the VMs that arrive during the run
    (``world.arrival``; their entries in ``placement`` are ignored); without it they go to
    their host in ``placement``.
    """

    def __init__(
        self,
        world: World,
        placement: IntA,
        decide: Callable[[Context], Moves] | None,
        *,
        power_aware: bool = True,
        start: float = 0.1,
        history: int = 30,
        progress: Callable[[int, int], None] | None = None,
        blocked: Callable[[float], NDArray[np.bool_]] | None = None,
        place: Placer | None = None,
    ) -> None:
        v, h = world.n_vms, world.n_hosts
        self.w, self.decide, self.power_aware = world, decide, power_aware
        self.host = placement.astype(np.int64).copy()
        self.seq = np.arange(v, dtype=np.int64)
        self.next_seq = v
        self.in_mig = np.zeros(v, dtype=bool)
        self.alive = np.ones(v, dtype=bool) if world.arrival is None else world.arrival <= 0
        self.waiting = ~self.alive  # VMs not arrived yet (or no host could take them)
        self.place = place
        self.arrivals = 0
        self.departures = 0
        self.f_vm: list[int] = []
        self.f_host: list[int] = []
        self.f_seq: list[int] = []
        self.cur = np.zeros(h)  # host utilisation MIPS after the last update
        self._cur_power: tuple[FloatA, FloatA] | None = None  # _power_at(cur) if known
        self.vm_hist = np.zeros((v, history))
        self.vm_hist_len = np.zeros(v, dtype=np.int64)
        self.start, self.last = start, start
        self.energy_ws = 0.0
        self.migrations = 0
        self.log: list[tuple[float, int, int, int]] = []  # (start, vm, source, destination)
        self.kernel = kernel_module()
        self.hosts_rec, self.vms_rec = HostRecorder(h, self.kernel), VmRecorder(v, self.kernel)
        self.series = Series()
        self.progress = progress
        self.blocked = blocked or (lambda t: np.zeros(h, dtype=bool))
        self.limit = world.interval * (world.samples.shape[1] - 1)
        self._by_sample = np.ascontiguousarray(world.samples.T)  # (S + 1, V): rows, not columns
        self.version = 0  # bumped when the VM-on-host lists change
        self._layout: tuple[int, Entries, tuple[IntA, IntA]] | None = None

    # -- time and requests -------------------------------------------------------------
    def requests(self, t: float) -> FloatA:
        """(V,) requested MIPS at ``t``: the trace interpolated as CloudSim's PlanetLab model."""
        s, iv = self._by_sample, self.w.interval
        if math.fmod(t, iv) == 0:
            u = s[int(t) // int(iv)]
        else:
            t1, t2 = math.floor(t / iv), math.ceil(t / iv)
            u1, u2 = s[t1], s[t2]
            u = u1 + (u2 - u1) / ((t2 - t1) * iv) * (t - t1 * iv)
        return np.asarray(u * self.w.vm_mips)

    def entries(self) -> Entries:
        """Entries of running VMs on their hosts, then in-flight entries on destinations."""
        n = len(self.f_vm)
        base = np.flatnonzero(self.alive)
        return Entries(
            vm=np.concatenate([base, np.array(self.f_vm, dtype=np.int64)]),
            host=np.concatenate([self.host[base], np.array(self.f_host, dtype=np.int64)]),
            seq=np.concatenate([self.seq[base], np.array(self.f_seq, dtype=np.int64)]),
            incoming=np.concatenate([np.zeros(base.size, bool), np.ones(n, bool)]),
        )

    def drop_finished(self, req: FloatA, t: float) -> bool:
        """CloudSim removes, at every update, each VM not migrating whose request is 0
        (paper mode); otherwise VMs leave when the trace marks them absent."""
        if self.w.drop_idle:
            gone = self.alive & ~self.in_mig & (req == 0)
        elif self.w.present is not None:
            k = min(int(t // self.w.interval), self.w.present.shape[1] - 1)
            gone = self.alive & ~self.in_mig & ~self.w.present[:, k]
        else:
            return False
        if not gone.any():
            return False
        if not self.w.drop_idle:
            self.departures += int(gone.sum())
        self.alive &= ~gone
        self.version += 1
        return True

    def admit(self, t: float) -> None:
        """Place the VMs whose first sample has come by ``t`` (operator traces only)."""
        arrival, present = self.w.arrival, self.w.present
        if arrival is None or not self.waiting.any():
            return
        k = int(t // self.w.interval)
        due = self.waiting & (arrival <= k)
        if present is not None:  # gone again before a host took it
            self.waiting &= ~(due & ~present[:, min(k, present.shape[1] - 1)])
            due &= self.waiting
        vms = np.flatnonzero(due)
        if vms.size == 0:
            return
        if self.place is None:
            hosts = self.host[vms]
        else:
            hosts = self.place(self.w, vms, self.host, self.alive, self.blocked(t))
        vms, hosts = vms[hosts >= 0], hosts[hosts >= 0]
        self.host[vms] = hosts
        self.seq[vms] = np.arange(self.next_seq, self.next_seq + vms.size)
        self.next_seq += vms.size
        self.alive[vms] = True
        self.waiting[vms] = False
        self.arrivals += int(vms.size)
        self.version += 1

    def layout(self) -> tuple[Entries, tuple[IntA, IntA]]:
        """Entries and their list slots, rebuilt only after a structural change."""
        if self._layout is None or self._layout[0] != self.version:
            e = self.entries()
            k = self.kernel
            lay = slots(e.host, e.seq) if k is None else slots_compiled(k, e.host, e.seq)
            self._layout = (self.version, e, lay)
        return self._layout[1], self._layout[2]

    def evaluate(self, req: FloatA) -> tuple[Entries, HostState]:
        e, lay = self.layout()
        w, k = self.w, self.kernel
        if k is None:
            return e, evaluate(e, req, self.in_mig, w.host_mips, w.host_pe, lay)
        return e, evaluate_compiled(k, e, req, self.in_mig, w.host_mips, w.host_pe, lay)

    # -- accounting --------------------------------------------------------------------
    def account(self, t: float, new_util_mips: FloatA) -> None:
        """Energy of all hosts from the last update to ``t``, ending at ``new_util_mips``."""
        dt = t - self.last
        end: tuple[FloatA, FloatA] | None = None
        if dt > 0:
            if self.power_aware:
                # the start's power is the last interval's end power (the same array) if known
                u0, p0 = self._cur_power or self._power_at(self.cur)
                end = self._power_at(new_util_mips)
                if self.kernel is not None:  # the same terms, compiled; numpy sums them
                    e = np.empty(u0.shape[0])
                    self.kernel.energy(u0, p0, end[1], dt, e)
                else:
                    e = np.where(u0 == 0, 0.0, (p0 + (end[1] - p0) / 2) * dt)
                self.energy_ws += float(e.sum())
            else:
                self.energy_ws += float(self.w.host_power[:, -1].sum()) * dt
            self.last = t
        self.cur, self._cur_power = new_util_mips, end

    def _power_at(self, util_mips: FloatA) -> tuple[FloatA, FloatA]:
        """(H,) utilisation and power (W) of hosts using ``util_mips``."""
        if self.kernel is not None:  # the same float operations, compiled
            u = np.empty(util_mips.shape[0])
            return u, self.kernel.power_at(util_mips, self.w.host_mips, self.w.host_power, u)
        u = utilisation(util_mips, self.w.host_mips)
        return u, spec_power(np.minimum(u, 1.0), self.w.host_power)

    def record(self, t: float, e: Entries, st: HostState) -> None:
        """State-history entries at ``t``. A migrating VM's entry comes from its source host
        (CloudSim's destination host writes none)."""
        self.hosts_rec.record(t, st.util_mips, st.req_mips, st.util_mips > 0)
        nb = int((~e.incoming).sum())
        self.vms_rec.record(t, e.vm[:nb], st.alloc[:nb], st.req[:nb], st.migrating_out[:nb])

    @property
    def energy_kwh(self) -> float:
        return self.energy_ws / 3_600_000.0

    # -- events ------------------------------------------------------------------------
    def push_history(self, req: FloatA) -> None:
        u = req / self.w.vm_mips
        if self.kernel is not None:  # the same shifts, compiled
            self.kernel.push_history(u, self.vm_hist, self.vm_hist_len)
            return
        m = u != 0  # CloudSim keeps only non-zero samples
        h = self.vm_hist
        h[m, 1:] = h[m, :-1]
        h[m, 0] = u[m]
        self.vm_hist_len[m] = np.minimum(self.vm_hist_len[m] + 1, h.shape[1])

    def step(self, t: float, k: int) -> list[tuple[float, int, int]]:
        """Decision at ``t``: update all hosts, ask the policy, start its migrations."""
        self.admit(t)
        req = self.requests(t)
        e, st = self.evaluate(req)
        self.account(t, st.util_mips)
        self.record(t, e, st)
        self.push_history(req)
        self.sample(t, st)
        if self.drop_finished(req, t):
            e, st = self.evaluate(req)
        if self.decide is None:
            return []
        ctx = Context(
            t, k, req, st, self.host, self.alive, e, self.vm_hist, self.vm_hist_len, self.w,
            self.blocked(t), self.in_mig.copy(),
        )  # fmt: skip
        moves = self.decide(ctx)
        return self.start_migrations(t, moves, req) if moves else []

    def sample(self, t: float, st: HostState) -> None:
        s, u = self.series, utilisation(st.util_mips, self.w.host_mips)
        on = st.util_mips > 0
        s.t.append(t)
        s.active.append(int(on.sum()))
        s.energy_kwh.append(self.energy_kwh)
        s.migrations.append(self.migrations)
        s.mean_load.append(float(u[on].mean()) if on.any() else 0.0)
        s.max_load.append(float(u.max()) if u.size else 0.0)
        s.overloaded.append(int((st.req_mips > self.w.host_mips).sum()))
        s.slatah.append(self.hosts_rec.slatah)

    def start_migrations(self, t: float, moves: Moves, req: FloatA) -> list[tuple[float, int, int]]:
        """Start ``moves`` (VM, destination) at ``t``; their completions (time, VM,
        destination). A VM already flying to the same destination keeps its entry there."""
        vms, dsts = (list(c) for c in zip(*moves, strict=True))
        vs = np.array(vms, dtype=np.int64)
        # memory over half the destination's bandwidth, element by element as one at a time
        delays = self.w.vm_ram[vs] / (self.w.host_bw[np.array(dsts, dtype=np.int64)] / (2 * 8000))
        srcs = self.host[vs].tolist()
        self.migrations += len(vms)
        self.log.extend(zip([t] * len(vms), vms, srcs, dsts, strict=True))
        flying = set(zip(self.f_vm, self.f_host, strict=True))
        new = [m for m in dict.fromkeys(zip(vms, dsts, strict=True)) if m not in flying]
        self.f_vm += [v for v, _ in new]
        self.f_host += [d for _, d in new]
        self.f_seq += range(self.next_seq, self.next_seq + len(new))
        self.next_seq += len(new)
        self.in_mig[vs] = True
        self.version += 1
        e, st = self.evaluate(req)
        self.account(t, st.util_mips)
        self.record(t, e, st)
        return list(zip([t + d for d in delays.tolist()], vms, dsts, strict=True))

    def complete(self, tau: float, group: list[tuple[float, int, int]]) -> None:
        """Migrations finishing at ``tau`` (in the order they started)."""
        req = self.requests(tau)
        _, st = self.evaluate(req)
        self.account(tau, st.util_mips)
        self.drop_finished(req, tau)
        # in-flight entries are unique by (VM, destination): drop the finished ones at once
        done = {(v, dst) for _, v, dst in group}
        kept = [f for f in zip(self.f_vm, self.f_host, self.f_seq, strict=True)
                if (f[0], f[1]) not in done]  # fmt: skip
        self.f_vm, self.f_host, self.f_seq = (
            [f[0] for f in kept],
            [f[1] for f in kept],
            [f[2] for f in kept],
        )
        for _, v, dst in group:
            self.host[v] = dst
            self.seq[v] = self.next_seq
            self.next_seq += 1
            self.in_mig[v] = False
        self.version += 1
        e, st = self.evaluate(req)
        self.account(tau, st.util_mips)
        self.record(tau, e, st)
        self.drop_finished(req, tau)

    def drain(self, pending: list[tuple[float, int, int]], until: float) -> None:
        pending.sort(key=lambda x: x[0])  # stable: same time keeps start order
        while pending and pending[0][0] <= until:
            tau = pending[0][0]
            group = [p for p in pending if p[0] == tau]
            del pending[: len(group)]
            self.complete(tau, group)

    def run(self) -> Engine:
        """Simulate from ``start`` to the end of the trace."""
        t, k = self.start, 0
        pending: list[tuple[float, int, int]] = []
        n = int((self.limit - self.start) // self.w.interval)
        while True:
            t_next = t + self.w.interval
            if t_next > self.limit:
                break
            self.drain(pending, t_next)
            t, k = t_next, k + 1
            pending = self.step(t, k)
            if self.progress is not None:
                self.progress(k, n)
        self.drain(pending, self.limit)
        return self
