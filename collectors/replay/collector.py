"""The trace-replay collector: a simulated cluster set, published like a real platform.

VM ``j`` of the scenario replays trace row ``j % V`` (shifted by ``j // V`` steps when there
are more VMs than trace rows). Each step publishes one metric batch per host with all its
VMs' samples. :meth:`ReplayCollector.apply` is this platform's migration call: it checks a
move the way a hypervisor would (the VM is on the source, the destination is in the same
cluster, not in maintenance, and has allocation room), moves the VM, republishes it and
reports the result with the move's idempotency key; a key seen before is never applied
twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import msgspec
import numpy as np
from numpy.typing import NDArray

from collectors.events import (
    ActionResult,
    Event,
    HostEvent,
    MetricBatch,
    Move,
    Recommendation,
    Sink,
    VmEvent,
    inventory_key,
    move_result,
)
from collectors.replay.scenario import Scenario, ScenarioError, flavor_choice
from collectors.replay.traces import Trace

__all__ = ["ReplayCollector"]

IntA = NDArray[np.int64]
FloatA = NDArray[np.float64]


class ReplayCollector:
    """Publishes a scenario driven by a trace; applies moves to it.

    Parameters
    ----------
    scenario, trace
    sink : where events go (:class:`collectors.events.Sink`)
    speed : simulated steps per wall-clock second (``0``: as fast as possible)
    t0 : epoch seconds of step 0 (default: now); sample times are ``t0 + step * step_s``
    inventory_every : republish the whole inventory every so many steps (``0``: never)
    """

    def __init__(
        self,
        scenario: Scenario,
        trace: Trace,
        sink: Sink,
        *,
        speed: float = 1.0,
        t0: float | None = None,
        inventory_every: int = 12,
    ) -> None:
        self.scenario, self.trace, self.sink, self.speed = scenario, trace, sink, speed
        self.t0 = time.time() if t0 is None else t0
        self.inventory_every = inventory_every
        self._lock = threading.Lock()
        self._build()
        self.applied: dict[str, ActionResult] = {}
        self.step_no = 0
        self.samples_sent = 0
        self.seq = 0

    # ---- the simulated data centre -------------------------------------------------------

    def _build(self) -> None:
        sc = self.scenario
        rng = np.random.default_rng(sc.seed)
        hosts: list[HostEvent] = []
        host_cluster: list[int] = []
        for c, (name, groups) in enumerate(sc.host_groups().items()):
            for g in groups:
                for _ in range(g.count):
                    hosts.append(
                        HostEvent(
                            cluster=name,
                            uuid=f"{name}-h{len(hosts):05d}",
                            vcpus=g.vcpus,
                            memory_mb=g.memory_mb,
                            disk_gb=g.disk_gb,
                            vcpu_ratio=g.vcpu_ratio,
                            memory_ratio=g.memory_ratio,
                            vcpu_reserved=g.vcpu_reserved,
                            memory_mb_reserved=g.memory_mb_reserved,
                            platform="replay",
                            hostname=f"{name}-h{len(hosts):05d}",
                        )
                    )
                    host_cluster.append(c)
        self.hosts = hosts
        self.host_index = {h.uuid: i for i, h in enumerate(hosts)}
        self.host_cluster = np.array(host_cluster, dtype=np.int64)
        self.clusters = [c.name for c in sc.clusters]
        n_vm = sc.vms if sc.vms is not None else len(self.trace.vm_names)
        flav = flavor_choice(sc.flavors, n_vm, rng)
        self.alloc = np.array(
            [[sc.flavors[f].vcpus, sc.flavors[f].memory_mb, sc.flavors[f].disk_gb] for f in flav],
            float,
        ).reshape(-1, 3)
        self.cap = np.array(
            [
                [
                    (h.vcpus - h.vcpu_reserved) * h.vcpu_ratio,
                    (h.memory_mb - h.memory_mb_reserved) * h.memory_ratio,
                    h.disk_gb,
                ]
                for h in hosts
            ]
        )
        self.maintenance = np.zeros(len(hosts), dtype=bool)
        self.place = _initial_placement(self.alloc, self.cap, self.host_cluster, sc.placement, rng)
        self.vm_ids = [
            f"{self.clusters[self.host_cluster[h]]}-vm{j:06d}"
            for j, h in enumerate(self.place.tolist())
        ]
        self.vm_index = {v: j for j, v in enumerate(self.vm_ids)}
        v_trace = len(self.trace.vm_names)
        self.row = np.arange(n_vm) % v_trace
        self.shift = np.arange(n_vm) // v_trace

    def vm_event(self, j: int) -> VmEvent:
        h = self.hosts[int(self.place[j])]
        a = self.alloc[j]
        return VmEvent(
            cluster=h.cluster,
            uuid=self.vm_ids[j],
            host=h.uuid,
            vcpus=float(a[0]),
            memory_mb=float(a[1]),
            disk_gb=float(a[2]),
            name=self.trace.vm_names[int(self.row[j])],
        )

    def inventory(self) -> Iterator[tuple[str, Event]]:
        for h in self.hosts:
            yield inventory_key(h.cluster, "host", h.uuid), h
        for j in range(len(self.vm_ids)):
            e = self.vm_event(j)
            yield inventory_key(e.cluster, "vm", e.uuid), e

    def publish_inventory(self) -> None:
        with self._lock:
            for key, e in self.inventory():
                self.sink.publish("inventory", key, e)
        self.sink.flush()

    # ---- metrics -------------------------------------------------------------------------

    def cpu_pct(self, step: int) -> FloatA:
        """(V,) CPU percent of every VM at ``step`` (the trace wraps around)."""
        cols = (step + self.shift) % self.trace.n_steps
        out: FloatA = self.trace.cpu_pct[self.row, cols]
        return out

    def publish_step(self, step: int) -> int:
        """Publish one batch per host for ``step``; returns the number of samples."""
        cpu = self.cpu_pct(step)
        mem = self.alloc[:, 1] * (
            self.scenario.memory_base + (1 - self.scenario.memory_base) * cpu / 100.0
        )
        ts = self.t0 + step * self.trace.step_s
        with self._lock:
            order = np.argsort(self.place, kind="stable")
            bounds = np.searchsorted(self.place[order], np.arange(len(self.hosts) + 1))
            for h, host in enumerate(self.hosts):
                idx = order[bounds[h] : bounds[h + 1]]
                self.sink.publish(
                    "metrics",
                    inventory_key(host.cluster, "host", host.uuid),
                    MetricBatch(
                        host.cluster,
                        host.uuid,
                        ts,
                        self.seq,
                        [self.vm_ids[j] for j in idx.tolist()],
                        cpu[idx].tolist(),
                        np.round(mem[idx], 1).tolist(),
                        sent=time.time(),
                    ),
                )
            self.seq += 1
        self.sink.flush()
        self.samples_sent += len(self.vm_ids)
        return len(self.vm_ids)

    def run(
        self,
        stop: threading.Event,
        steps: int | None = None,
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        """Publish the inventory, then one step per ``1 / speed`` seconds until ``stop``.

        The inventory is published again every ``inventory_every`` steps, as a real
        collector's periodic poll would, so that a consumer that lost it (a broker restarted
        empty) gets it back.
        """
        self.publish_inventory()
        start = time.monotonic()
        last = steps if steps is not None else self.trace.n_steps
        every = self.inventory_every
        while self.step_no < last and not stop.is_set():
            if every and self.step_no and self.step_no % every == 0:
                self.publish_inventory()
            self.publish_step(self.step_no)
            if on_step is not None:
                on_step(self.step_no)
            self.step_no += 1
            if self.speed > 0:
                stop.wait(max(0.0, start + self.step_no / self.speed - time.monotonic()))

    # ---- actuation -----------------------------------------------------------------------

    def owns(self, cluster: str) -> bool:
        """:class:`collectors.platform.Mover`: is ``cluster`` one of the replayed clusters?"""
        return cluster in self.clusters

    def move(self, rec: Recommendation, m: Move) -> ActionResult:
        """:class:`collectors.platform.Mover`: apply one move; the caller reports the result."""
        with self._lock:
            result = self._move(rec, m)
        self.sink.flush()
        return result

    def refusal(self, cluster: str, vm: str, src: str, dst: str) -> str:
        """Why the platform would refuse this move now (``""``: it would not)."""
        with self._lock:
            return self._refuse(cluster, vm, src, dst)

    def apply(self, rec: Recommendation) -> list[ActionResult]:
        """Apply a recommendation's moves in order; each result is published and returned."""
        out = []
        with self._lock:
            for m in rec.moves:
                if m.key in self.applied:
                    continue  # idempotency: a redelivered recommendation changes nothing
                result = self._move(rec, m)
                self.applied[result.key] = result
                self.sink.publish(
                    "actions", inventory_key(rec.cluster, "action", result.key), result
                )
                out.append(result)
        self.sink.flush()
        return out

    def _move(self, rec: Recommendation, m: Move) -> ActionResult:
        vm, src, dst = m.vm, m.src, m.dst
        error = self._refuse(rec.cluster, vm, src, dst)
        if not error:
            j = self.vm_index[vm]
            self.place[j] = self.host_index[dst]
            e = self.vm_event(j)
            self.sink.publish("inventory", inventory_key(e.cluster, "vm", e.uuid), e)
        return move_result(rec, m, error)

    def _refuse(self, cluster: str, vm: str, src: str, dst: str) -> str:
        j, d = self.vm_index.get(vm), self.host_index.get(dst)
        if j is None:
            return f"unknown VM {vm!r}"
        if d is None or self.hosts[d].cluster != cluster:
            return f"destination {dst!r} is not a host of cluster {cluster!r}"
        here = self.hosts[int(self.place[j])].uuid
        if here != src:
            return f"VM is on {here!r}, not on the source {src!r}"
        if self.maintenance[d]:
            return f"destination {dst!r} is in maintenance"
        used = self.alloc[self.place == d].sum(axis=0) + self.alloc[j]
        if (used > self.cap[d] + 1e-9).any():
            return f"destination {dst!r} has no allocation room"
        return ""

    def set_maintenance(self, host: str, on: bool = True) -> None:
        with self._lock:
            h = self.host_index[host]
            self.maintenance[h] = on
            e = self.hosts[h]
            self.hosts[h] = msgspec.structs.replace(e, maintenance=on)
            self.sink.publish("inventory", inventory_key(e.cluster, "host", host), self.hosts[h])
        self.sink.flush()


def _initial_placement(
    alloc: FloatA, cap: FloatA, host_cluster: IntA, how: str, rng: np.random.Generator
) -> IntA:
    """VMs dealt to clusters by CPU capacity, then placed first-fit in a host order."""
    n_c = int(host_cluster.max()) + 1
    share = np.bincount(host_cluster, cap[:, 0], minlength=n_c)
    cluster_of = rng.choice(n_c, size=len(alloc), p=share / share.sum())
    used = np.zeros_like(cap)
    place = np.empty(len(alloc), dtype=np.int64)
    pref = {c: _host_order(np.flatnonzero(host_cluster == c), how, rng) for c in range(n_c)}
    for j in range(len(alloc)):
        hosts = pref[int(cluster_of[j])]
        fits = ((used[hosts] + alloc[j]) <= cap[hosts]).all(axis=1)
        if not fits.any():
            raise ScenarioError(
                f"{len(alloc)} VMs do not fit: VM {j} fits on no host of its cluster; add hosts"
            )
        pick = hosts[int(np.argmax(fits))] if how == "skewed" else hosts[j % len(hosts)]
        if how != "skewed" and not fits[j % len(hosts)]:
            pick = hosts[int(np.argmax(fits))]
        used[pick] += alloc[j]
        place[j] = pick
    return place


def _host_order(hosts: IntA, how: str, rng: np.random.Generator) -> IntA:
    return rng.permutation(hosts) if how == "skewed" else hosts
