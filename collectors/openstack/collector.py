"""The OpenStack platform's :class:`~collectors.platform.Source`: Nova inventory and
Prometheus load, every interval, as xdrs events on any :class:`~collectors.events.Sink`.

A cycle reads the inventory (:func:`collect_inventory`), asks Prometheus its three queries
(:func:`query_load`), then publishes: the inventory events that differ from the last ones
published (tombstones for what is gone; a cycle that is retried publishes nothing twice),
then one :class:`MetricBatch` per host with fresh series. A host or server with no fresh
series is *held*: no batch for the host, the server left out of its host's batch, and the
inventory says so, so that no engine plans a move to or from it (a held host is published
``disabled`` with its servers ``pinned``; a held server ``pinned``); each cycle's holds are
counted in the collector's Prometheus metrics (``xdrs_openstack_held``,
``xdrs_openstack_metric_gaps_total``), and so are the compute services with no Placement
provider (``xdrs_openstack_hosts_without_provider``; no capacity, so not published). Nova
or Prometheus failing is retried with doubling back-off and never stops the loop; wrong
credentials or TLS do (retrying cannot help).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge

from collectors.events import Event, HostEvent, MetricBatch, Sink, VmEvent, inventory_key
from collectors.openstack.connection import AuthError, OpenStackError, TLSError, error
from collectors.openstack.inventory import Inventory, ProviderCache, collect_inventory
from collectors.openstack.mapping import cluster_id, inventory_events
from collectors.openstack.prometheus import Load, PromClient, PromError, SeriesNames, query_load

__all__ = ["CollectorOptions", "CollectorStats", "OpenStackCollector"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectorOptions:
    """scope : prefix of the cloud's ids (``SCOPE/nova`` is its cluster)."""

    scope: str
    interval_s: float = 30.0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    names: SeriesNames = field(default_factory=SeriesNames)

    def validate(self) -> None:
        if not self.scope or "/" in self.scope:
            raise ValueError(f"scope: expected a name without '/', got {self.scope!r}")
        for name in ("interval_s", "backoff_s", "backoff_max_s"):
            if not 0 < getattr(self, name) < 1e6:
                raise ValueError(f"{name}: expected seconds > 0, got {getattr(self, name)!r}")
        self.names.validate()


class CollectorStats:
    """The collector's own metrics on ``registry`` (bounded labels: cluster, kind)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.queries = Counter("xdrs_openstack_prometheus_queries", "PromQL queries sent.",
                               ["cluster"], registry=r)  # fmt: skip
        self.per_cycle = Gauge("xdrs_openstack_prometheus_queries_per_cycle",
                               "PromQL queries of the last cycle.", ["cluster"],
                               registry=r)  # fmt: skip
        self.held = Gauge("xdrs_openstack_held", "Hosts and servers with no fresh series now.",
                          ["cluster", "kind"], registry=r)  # fmt: skip
        self.gaps = Counter("xdrs_openstack_metric_gaps", "Hosts and servers held, per cycle.",
                            ["cluster", "kind"], registry=r)  # fmt: skip
        self.cycles = Counter("xdrs_openstack_cycles", "Collection cycles completed.",
                              ["cluster"], registry=r)  # fmt: skip
        self.failures = Counter("xdrs_openstack_cycle_failures",
                                "Cycles failed (Nova or Prometheus), retried.", ["cluster"],
                                registry=r)  # fmt: skip
        self.unmatched = Gauge("xdrs_openstack_hosts_without_provider",
                               "Compute services with no Placement resource provider "
                               "(left out of the plan with their servers).", ["cluster"],
                               registry=r)  # fmt: skip


class OpenStackCollector:
    """One cloud into ``sink`` until ``stop`` (or ``cycles`` collections, ``0``: no end)."""

    def __init__(self, conn: Any, prom: PromClient, sink: Sink, opts: CollectorOptions, *,
                 stats: CollectorStats | None = None, cycles: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        opts.validate()
        self.conn, self.prom, self.sink, self.opts = conn, prom, sink, opts
        self.stats = stats or CollectorStats()
        self.cycles, self.clock = cycles, clock
        self.cluster = cluster_id(opts.scope)
        self.current: dict[str, Event] = {}  # key -> last published inventory event
        self.providers = ProviderCache()
        self.seq: dict[str, int] = {}
        self.last_ts: dict[str, float] = {}
        self.done = self.failures = self.published = self.tombstones = self.batches = 0
        self.held_hosts: set[str] = set()
        self.held_servers: set[str] = set()

    # ---- one cycle ----------------------------------------------------------------------------

    def cycle(self) -> None:
        """Collect once and publish; raises :class:`OpenStackError` or :class:`PromError`
        (nothing published then)."""
        try:
            inv = collect_inventory(self.conn, self.opts.scope, self.providers)
        except OpenStackError:
            raise
        except Exception as e:  # the SDK's and keystoneauth's many failure types
            raise error(self.opts.scope, e) from None
        self.stats.unmatched.labels(self.cluster).set(len(inv.unmatched))
        before = self.prom.queries
        load = query_load(self.prom, self.opts.names)
        self._count_queries(self.prom.queries - before)
        events = self._held(inventory_events(inv, self.opts.scope), inv, load)
        self._sync(events)
        self._metrics(events, load)
        self.sink.flush()
        self.done += 1
        self.stats.cycles.labels(self.cluster).inc()

    def _count_queries(self, n: int) -> None:
        self.stats.queries.labels(self.cluster).inc(n)
        self.stats.per_cycle.labels(self.cluster).set(n)

    def _held(self, events: list[Any], inv: Inventory, load: Load) -> list[Any]:
        """The events with holds applied (see the module's docstring); counts them."""
        fresh_hosts = {k.split(".", 1)[0] for k in load.host_busy} | set(load.host_busy)
        prefix = len(self.opts.scope) + 1
        fresh_servers = load.server_cpu_ns.keys() & load.server_mem_mb.keys()
        self.held_hosts = {
            e.uuid for e in events if isinstance(e, HostEvent) and e.hostname not in fresh_hosts
        }
        self.held_servers = {
            e.uuid
            for e in events
            if isinstance(e, VmEvent)
            and e.host not in self.held_hosts
            and e.uuid[prefix:] not in fresh_servers
        }
        for kind, held in (("host", self.held_hosts), ("server", self.held_servers)):
            self.stats.held.labels(self.cluster, kind).set(len(held))
            self.stats.gaps.labels(self.cluster, kind).inc(len(held))
        return [self._hold(e) for e in events]

    def _hold(self, e: Any) -> Any:
        if isinstance(e, HostEvent) and e.uuid in self.held_hosts:
            return msgspec.structs.replace(e, disabled=True)
        if isinstance(e, VmEvent) and (e.host in self.held_hosts or e.uuid in self.held_servers):
            return msgspec.structs.replace(e, pinned=True)
        return e

    def _sync(self, events: list[Any]) -> None:
        """Publish what differs from what was published; tombstone what is gone."""
        want: dict[str, Event] = {}
        for e in events:
            kind = (
                "host" if isinstance(e, HostEvent) else "vm" if isinstance(e, VmEvent) else "rules"
            )
            want[inventory_key(e.cluster, kind, "" if kind == "rules" else e.uuid)] = e
        for key, e in want.items():
            if self.current.get(key) != e:
                self.sink.publish("inventory", key, e)
                self.current[key] = e
                self.published += 1
        for key in [k for k in self.current if k not in want]:
            del self.current[key]
            self.sink.publish("inventory", key, None)
            self.tombstones += 1

    def _metrics(self, events: list[Any], load: Load) -> None:
        by_host: dict[str, list[VmEvent]] = {}
        for e in events:
            if isinstance(e, VmEvent) and e.uuid not in self.held_servers:
                by_host.setdefault(e.host, []).append(e)
        busy = {k.split(".", 1)[0]: v for k, v in load.host_busy.items()} | load.host_busy
        sent = time.time()
        for h in events:
            if isinstance(h, HostEvent) and h.uuid not in self.held_hosts:
                batch = self._batch(h, by_host.get(h.uuid, []), load, busy[h.hostname], sent)
                self.sink.publish("metrics", inventory_key(self.cluster, "host", h.uuid), batch)
                self.batches += 1

    def _batch(self, h: HostEvent, vms: list[VmEvent], load: Load, busy: float,
               sent: float) -> MetricBatch:  # fmt: skip
        prefix = len(self.opts.scope) + 1
        cpu = [round(min(100.0, max(0.0, load.server_cpu_ns[v.uuid[prefix:]] / 1e7 / v.vcpus)), 3)
               for v in vms]  # fmt: skip
        mem = [round(max(0.0, load.server_mem_mb[v.uuid[prefix:]]), 1) for v in vms]
        ts = max(load.ts, self.last_ts.get(h.uuid, -1.0) + 0.001)  # strictly increasing
        self.last_ts[h.uuid] = ts
        seq = self.seq[h.uuid] = self.seq.get(h.uuid, -1) + 1
        return MetricBatch(cluster=self.cluster, host=h.uuid, ts=ts, seq=seq,
                           vms=[v.uuid for v in vms], cpu_pct=cpu, mem_mib=mem,
                           host_cpu_pct=round(min(max(busy, 0.0), 1.0) * 100.0, 3),
                           sent=sent)  # fmt: skip

    # ---- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Cycle every ``interval_s`` until ``stop`` or ``cycles``; retries failures."""
        delay = self.opts.backoff_s
        while not stop.is_set() and not (self.cycles and self.done >= self.cycles):
            start = self.clock()
            try:
                self.cycle()
            except (AuthError, TLSError):
                raise  # wrong credentials or a refused certificate: retrying cannot help
            except (OpenStackError, PromError) as e:
                self.failures += 1
                self.stats.failures.labels(self.cluster).inc()
                log.warning("openstack collection failed (%s); retrying in %.1f s", e, delay)
                stop.wait(delay)
                delay = min(2 * delay, self.opts.backoff_max_s)
                continue
            delay = self.opts.backoff_s
            if not (self.cycles and self.done >= self.cycles):
                stop.wait(max(0.0, start + self.opts.interval_s - self.clock()))

    def summary(self) -> str:
        return (
            f"{self.done} collections, {self.failures} failed and retried, "
            f"{self.published} inventory events, {self.tombstones} tombstones, "
            f"{self.batches} metric batches, {self.prom.queries} Prometheus queries, "
            f"{self.providers.fetched} Placement providers read"
        )
