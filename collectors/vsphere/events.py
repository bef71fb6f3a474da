"""vSphere records -> xdrs events: the bridge between the collector and the event bus.

:class:`EventBridge` is a collector sink (``on_inventory``, ``on_metrics``, ``on_changes``)
that publishes :mod:`collectors.events` messages through any events sink (a
:class:`xdrs.bus.kafka.KafkaSink` in production):

- inventory: a :class:`HostEvent` per host of a cluster, a :class:`VmEvent` per powered-on,
  non-template VM on such a host, a :class:`RulesEvent` per cluster (the snapshot
  extension's ``rules``, mapped as :func:`to_cluster_state` does), and a tombstone for every
  host or VM published before and gone now. Only what changed is published.
- metrics: one :class:`MetricBatch` per host per collection, ``cpu_pct`` = percent of the
  VM's own vCPUs (MHz over the host's MHz per core times vCPUs), ``mem_mib`` = consumed
  memory, ``ts`` = sample time, strictly increasing per host.
- changes seen by the update watcher (host, power state, name, maintenance, removal):
  updated events or tombstones at once, without waiting for the next inventory.

Identifiers are scoped by the vCenter (``scope``, e.g. its host name): cluster
``SCOPE/domain-c7``, host ``SCOPE/host-21``, VM ``SCOPE/vm-57``, so that several vCenters
publishing to one bus cannot collide; the cluster's vSphere name goes into ``domain``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from collectors.events import (
    Event,
    HostEvent,
    MetricBatch,
    Rule,
    RulesEvent,
    Sink,
    VmEvent,
    inventory_key,
)
from collectors.vsphere.mapping import MappedRule, cluster_rules
from collectors.vsphere.records import (
    Change,
    ClusterRecord,
    HostRecord,
    Inventory,
    MetricSample,
    VMRecord,
)
from placement.rules import KIND_NAMES

__all__ = ["BridgeOptions", "EventBridge", "scope_of"]

log = logging.getLogger(__name__)
CPU = "cpu.usagemhz.average"
MEM = "mem.consumed.average"
SOURCES = ("quickstats", "perf")


def scope_of(url: str) -> str:
    """A vCenter's default scope: ``host`` of its URL, with ``:port`` if not the default."""
    u = urlsplit(url if "://" in url else f"https://{url}")
    host = u.hostname or url
    default = 443 if u.scheme == "https" else 80
    try:
        port = u.port
    except ValueError:
        port = None
    return host if port in (None, default) else f"{host}:{port}"


@dataclass(frozen=True)
class BridgeOptions:
    """How records become events.

    scope : prefix of every cluster, host and VM id (one per vCenter; no ``/`` needed).
    cpu_ratio, mem_ratio : allocation ratios of the hosts (vCPUs per core, memory).
    metric_source : ``quickstats`` (default) or ``perf`` (QueryPerf realtime values, with
        quickStats where QueryPerf has none).
    inventory_every : republish the whole inventory every so many collections (``0``:
        never), so that consumers of a broker that lost the compacted topic recover.
    """

    scope: str
    cpu_ratio: float = 4.0
    mem_ratio: float = 1.0
    metric_source: str = "quickstats"
    inventory_every: int = 15

    def validate(self) -> None:
        if not self.scope or "\x1f" in self.scope:
            raise ValueError(f"scope: expected a non-empty name, got {self.scope!r}")
        for name in ("cpu_ratio", "mem_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a number > 0, got {getattr(self, name)}")
        if self.metric_source not in SOURCES:
            raise ValueError(
                f"metric_source: expected one of {SOURCES}, got {self.metric_source!r}"
            )
        if self.inventory_every < 0:
            raise ValueError("inventory_every: expected an integer >= 0")


class EventBridge:
    """Collector sink -> events sink. Not thread-safe: the collector's thread calls it.

    Counters (for monitoring and tests): ``published`` inventory events and ``tombstones``
    sent, ``batches`` of metrics sent.
    """

    def __init__(
        self, sink: Sink, options: BridgeOptions, clock: Callable[[], float] = time.time
    ) -> None:
        options.validate()
        self.sink = sink
        self.opts = options
        self.clock = clock
        self.current: dict[str, Event] = {}  # key -> last published inventory event
        self.clusters: dict[str, ClusterRecord] = {}
        self.hosts: dict[str, HostRecord] = {}  # hosts of a cluster, by managed object id
        self.vms: dict[str, VMRecord] = {}
        self.vm_key: dict[str, str] = {}  # VM id -> key of its published event
        self.last_ts: dict[str, float] = {}
        self.seq: dict[str, int] = {}
        self.collections = 0
        self.published = self.tombstones = self.batches = 0

    # ---- identifiers ----------------------------------------------------------------------

    def uuid(self, moid: str) -> str:
        return f"{self.opts.scope}/{moid}"

    def moid(self, uuid: str) -> str | None:
        """The managed object id in ``uuid``, or ``None`` if it is not of this vCenter."""
        prefix = self.opts.scope + "/"
        return uuid[len(prefix) :] if uuid.startswith(prefix) else None

    # ---- inventory ------------------------------------------------------------------------

    def on_inventory(self, inv: Inventory) -> None:
        self.clusters = {c.id: c for c in inv.clusters}
        self.hosts = {h.id: h for h in inv.hosts if h.cluster in self.clusters}
        self.vms = {v.id: v for v in inv.vms}
        want: dict[str, Event] = {}
        for h in self.hosts.values():
            want.update([self._host_event(h)])
        for v in self.vms.values():
            item = self._vm_event(v)
            if item is not None:
                want.update([item])
        for c in inv.clusters:
            want.update([self._rules_event(c, want)])
        self._sync(want, inventory=True)
        self.sink.flush()

    def _host_event(self, h: HostRecord) -> tuple[str, HostEvent]:
        c = self.clusters[h.cluster or ""]
        e = HostEvent(
            cluster=self.uuid(c.id),
            uuid=self.uuid(h.id),
            vcpus=float(max(h.cores, 1)),
            memory_mb=float(max(h.memory_mib, 1)),
            hostname=h.name,
            vcpu_ratio=self.opts.cpu_ratio,
            memory_ratio=self.opts.mem_ratio,
            maintenance=h.maintenance,
            disabled=not (h.connected and h.powered_on),
            domain=c.name,
            platform="vsphere",
        )
        return inventory_key(e.cluster, "host", e.uuid), e

    def _vm_event(self, v: VMRecord) -> tuple[str, VmEvent] | None:
        h = self.hosts.get(v.host or "")
        if not v.powered_on or v.template or h is None:
            return None  # powered-off VMs use nothing and DRS leaves them where they are
        c = self.clusters[h.cluster or ""]
        e = VmEvent(
            cluster=self.uuid(c.id),
            uuid=self.uuid(v.id),
            host=self.uuid(h.id),
            vcpus=float(max(v.vcpus, 1)),
            memory_mb=float(max(v.memory_mib, 1)),
            name=v.name,
            pinned=v.id in c.manual_vms,
        )
        return inventory_key(e.cluster, "vm", e.uuid), e

    def _rules_event(self, c: ClusterRecord, want: dict[str, Event]) -> tuple[str, RulesEvent]:
        cluster = self.uuid(c.id)
        vms = {
            self.moid(e.uuid) or ""
            for e in want.values()
            if isinstance(e, VmEvent) and e.cluster == cluster
        }
        hosts = {h.id for h in self.hosts.values() if h.cluster == c.id}
        rules = [_rule_doc(r, self.uuid) for r in cluster_rules(c, vms, hosts)]
        return inventory_key(cluster, "rules"), RulesEvent(cluster, rules)

    def _sync(self, want: dict[str, Event], *, inventory: bool) -> None:
        """Publish what differs from ``current``; with ``inventory``, tombstone the rest."""
        for key, e in want.items():
            if self.current.get(key) != e:
                self._publish(key, e)
        if inventory:
            for key in [k for k in self.current if k not in want]:
                self._forget(key)
            self.vm_key = {
                self.moid(e.uuid) or "": k for k, e in want.items() if isinstance(e, VmEvent)
            }

    def _publish(self, key: str, e: Event) -> None:
        self.sink.publish("inventory", key, e)
        self.current[key] = e
        self.published += 1

    def _forget(self, key: str) -> None:
        e = self.current.pop(key)
        if isinstance(e, HostEvent | VmEvent):
            self.sink.publish("inventory", key, None)
            self.tombstones += 1
        elif isinstance(e, RulesEvent) and e.rules:
            self.sink.publish("inventory", key, RulesEvent(e.cluster, []))  # cluster gone

    # ---- metrics --------------------------------------------------------------------------

    def on_metrics(self, samples: Sequence[MetricSample]) -> None:
        self.collections += 1
        every = self.opts.inventory_every
        if every and self.collections % every == 0:
            for key, e in list(self.current.items()):
                self._publish(key, e)  # periodic full republish (see BridgeOptions)
        for batch in self._batches(samples):
            key = inventory_key(batch.cluster, "host", batch.host)
            self.sink.publish("metrics", key, batch)
            self.batches += 1
        self.sink.flush()

    def _batches(self, samples: Sequence[MetricSample]) -> Iterator[MetricBatch]:
        values = _latest(samples, self.opts.metric_source)
        by_host: dict[str, list[VmEvent]] = {}
        for key in self.vm_key.values():
            e = self.current[key]
            assert isinstance(e, VmEvent)
            by_host.setdefault(e.host, []).append(e)
        now = self.clock()
        for h in self.hosts.values():
            host_uuid = self.uuid(h.id)
            batch = self._batch(h, by_host.get(host_uuid, []), values, now)
            if batch is not None:
                yield batch

    def _batch(
        self,
        h: HostRecord,
        vms: list[VmEvent],
        values: dict[tuple[str, str, str], tuple[float, float]],
        now: float,
    ) -> MetricBatch | None:
        ids, cpu, mem, stamps = [], [], [], []
        mhz = max(h.mhz_per_core, 1)
        for e in vms:
            moid = self.moid(e.uuid) or ""
            c, m = values.get(("vm", moid, CPU)), values.get(("vm", moid, MEM))
            if c is None or m is None:
                continue
            ids.append(e.uuid)
            cpu.append(round(min(100.0, max(0.0, 100.0 * c[1] / (mhz * e.vcpus))), 3))
            mem.append(round(max(0.0, m[1]), 1))
            stamps.append(max(c[0], m[0]))
        hc = values.get(("host", h.id, CPU))
        if hc is not None:
            stamps.append(hc[0])
        if not stamps:
            return None
        host_uuid = self.uuid(h.id)
        ts = max(*stamps, self.last_ts.get(host_uuid, -1.0) + 0.001)  # strictly increasing
        self.last_ts[host_uuid] = ts
        seq = self.seq[host_uuid] = self.seq.get(host_uuid, -1) + 1
        host_pct = None if hc is None else max(0.0, 100.0 * hc[1] / (mhz * max(h.cores, 1)))
        return MetricBatch(
            self.uuid(h.cluster or ""),
            host_uuid,
            ts,
            seq,
            ids,
            cpu,
            mem,
            host_cpu_pct=host_pct,
            sent=now,
        )

    # ---- changes --------------------------------------------------------------------------

    def on_changes(self, changes: Sequence[Change]) -> None:
        touched_vms: set[str] = set()
        for ch in changes:
            if ch.kind == "vm":
                self._vm_change(ch)
                touched_vms.add(ch.id)
            else:
                self._host_change(ch)
        for vm_id in touched_vms:
            self._resync_vm(vm_id)
        self.sink.flush()

    def _vm_change(self, ch: Change) -> None:
        rec = self.vms.get(ch.id)
        if ch.field == "removed":
            self.vms.pop(ch.id, None)
        elif rec is None:
            return  # a VM added since the last inventory: described at the next one
        elif ch.field == "host":
            self.vms[ch.id] = dataclasses.replace(rec, host=_str_or_none(ch.value))
        elif ch.field == "power_state":
            self.vms[ch.id] = dataclasses.replace(rec, powered_on=ch.value == "poweredOn")
        elif ch.field == "name" and isinstance(ch.value, str):
            self.vms[ch.id] = dataclasses.replace(rec, name=ch.value)

    def _resync_vm(self, vm_id: str) -> None:
        old = self.vm_key.pop(vm_id, None)
        rec = self.vms.get(vm_id)
        item = None if rec is None else self._vm_event(rec)
        if old is not None and (item is None or item[0] != old):
            self._forget(old)
        if item is not None:
            self.vm_key[vm_id] = item[0]
            self._sync(dict([item]), inventory=False)

    def _host_change(self, ch: Change) -> None:
        rec = self.hosts.get(ch.id)
        if rec is None:
            return
        if ch.field == "removed":
            del self.hosts[ch.id]
            key = self._host_event(rec)[0]
            if key in self.current:
                self._forget(key)
            return
        if ch.field == "maintenance" and isinstance(ch.value, bool):
            rec = dataclasses.replace(rec, maintenance=ch.value)
        elif ch.field == "name" and isinstance(ch.value, str):
            rec = dataclasses.replace(rec, name=ch.value)
        self.hosts[ch.id] = rec
        self._sync(dict([self._host_event(rec)]), inventory=False)


def _str_or_none(x: object) -> str | None:
    return x if isinstance(x, str) else None


def _rule_doc(r: MappedRule, uuid: Callable[[str], str]) -> Rule:
    vms = [uuid(v) for v in r.vms]
    if r.type == "vm_host":
        hosts = [uuid(h) for h in r.hosts]
        return Rule(r.name, "vm_host", vms, KIND_NAMES[r.kind], hosts)  # type: ignore[arg-type]
    return Rule(r.name, r.type, vms)  # type: ignore[arg-type]


Values = dict[tuple[str, str, str], tuple[float, float]]


def _latest(samples: Iterable[MetricSample], source: str) -> Values:
    """``(kind, id, counter) -> (ts, value)``: the newest sample, ``source`` preferred."""
    out: Values = {}
    rank: dict[tuple[str, str, str], bool] = {}
    for s in samples:
        key = (s.kind, s.entity, s.counter)
        preferred = s.source == source
        old = out.get(key)
        if old is None or (preferred, s.ts) > (rank[key], old[0]):
            out[key] = (s.ts, s.value)
            rank[key] = preferred
    return out
