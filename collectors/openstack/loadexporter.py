"""A load exporter for a cloud that has no load: node_exporter- and Ceilometer-named series
for every hypervisor and server of a cloud, driven by a utilisation trace.

Nova's fake virt driver runs nothing, so the test cloud (and a demo) gets its load here:
each server takes the CPU utilisation of one VM of a trace (PlanetLab by default, one
trace step every ``step_s`` wall seconds); a host's busy CPU is the sum of its servers'
busy vCPUs plus a small base. The exporter serves, for Prometheus to scrape:

- ``node_cpu_seconds_total{fqdn, cpu, mode="idle"|"user"}`` (cumulative seconds per core),
  ``node_memory_MemTotal_bytes{fqdn}``, ``node_memory_MemAvailable_bytes{fqdn}``;
- ``ceilometer_cpu{resource}`` (cumulative CPU time, ns) and
  ``ceilometer_memory_usage{resource}`` (MB).

Names follow :class:`collectors.openstack.prometheus.SeriesNames`. Where the servers run is
read from Nova every ``refresh_s`` (they move). Load is made uneven on demand with
:meth:`LoadModel.set` (one server's CPU) and :meth:`LoadModel.set_host` (every server on a
host); :meth:`LoadModel.hide` stops serving a host's or a server's series (a metrics gap).
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from collectors.openstack.inventory import Inventory
from collectors.openstack.prometheus import SeriesNames
from collectors.replay.traces import Trace

__all__ = ["LoadExporter", "LoadModel"]

log = logging.getLogger(__name__)
BASE_BUSY_CORES = 0.2
MIB = 1 << 20


@dataclass
class _Host:
    cores: int
    memory_mb: float
    idle_s: float = 0.0
    busy_s: float = 0.0


@dataclass
class _Server:
    host: str
    vcpus: int
    ram_mb: int
    row: int
    cpu_ns: float = 0.0


class LoadModel:
    """Who runs where and how busy each is; cumulative counters advanced on each read.

    Parameters
    ----------
    trace : Trace
        ``(V, T)`` CPU percent; server ``s`` takes row ``crc32(s) % V``.
    step_s : float
        Wall seconds per trace step.
    clock : () -> float
        Seconds (the wall clock by default).
    """

    def __init__(self, trace: Trace, step_s: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        if not step_s > 0:
            raise ValueError(f"step_s: expected a number > 0, got {step_s!r}")
        self.trace, self.step_s, self.clock = trace, step_s, clock
        self.hosts: dict[str, _Host] = {}
        self.servers: dict[str, _Server] = {}
        self.overrides: dict[str, float] = {}
        self.hidden: set[str] = set()
        self.lock = threading.Lock()
        self._t0 = self._last = clock()

    # ---- what the cloud looks like ----------------------------------------------------------

    def update(self, inv: Inventory) -> None:
        """Take the hosts and the servers' current hosts from a Nova inventory."""
        with self.lock:
            self._advance()
            for h in inv.hosts:
                cores = int(h.total.get("VCPU", 0))
                if cores > 0:
                    old = self.hosts.get(h.name)
                    new = _Host(cores, h.total.get("MEMORY_MB", 0.0))
                    if old is not None:
                        new.idle_s, new.busy_s = old.idle_s, old.busy_s
                    self.hosts[h.name] = new
            seen = set()
            for s in inv.servers:
                if s.host in self.hosts and s.status == "ACTIVE":
                    seen.add(s.id)
                    old_s = self.servers.get(s.id)
                    row = zlib.crc32(s.id.encode()) % self.trace.cpu_pct.shape[0]
                    self.servers[s.id] = _Server(s.host, max(s.vcpus, 1), s.ram_mb, row,
                                                 old_s.cpu_ns if old_s else 0.0)  # fmt: skip
            for gone in set(self.servers) - seen:
                del self.servers[gone]

    # ---- making load uneven -----------------------------------------------------------------

    def set(self, server: str, cpu_pct: float | None) -> None:
        """Fix one server's CPU at ``cpu_pct`` percent of its vCPUs (``None``: the trace)."""
        with self.lock:
            self._advance()
            if cpu_pct is None:
                self.overrides.pop(server, None)
            else:
                self.overrides[server] = min(max(float(cpu_pct), 0.0), 100.0)

    def set_host(self, host: str, cpu_pct: float | None) -> list[str]:
        """:meth:`set` for every server now on ``host``; returns their ids."""
        ids = [k for k, s in self.servers.items() if s.host == host]
        for k in ids:
            self.set(k, cpu_pct)
        return ids

    def hide(self, name: str, hidden: bool = True) -> None:
        """Stop (or resume) serving the series of a host (by name) or a server (by id)."""
        with self.lock:
            (self.hidden.add if hidden else self.hidden.discard)(name)

    # ---- the numbers --------------------------------------------------------------------------

    def cpu_pct(self, server: str) -> float:
        """The server's CPU now, percent of its vCPUs."""
        if server in self.overrides:
            return self.overrides[server]
        s = self.servers[server]
        slot = int((self.clock() - self._t0) / self.step_s) % self.trace.cpu_pct.shape[1]
        return float(np.clip(self.trace.cpu_pct[s.row, slot], 0.0, 100.0))

    def _busy(self) -> dict[str, float]:
        busy = dict.fromkeys(self.hosts, BASE_BUSY_CORES)
        for k, s in self.servers.items():
            busy[s.host] += s.vcpus * self.cpu_pct(k) / 100.0
        return {h: min(b, self.hosts[h].cores) for h, b in busy.items()}

    def _advance(self) -> None:
        """Integrate the counters from the last read to now (at the rates of the last read)."""
        now = self.clock()
        dt, self._last = max(now - self._last, 0.0), now
        for h, b in self._busy().items():
            host = self.hosts[h]
            host.busy_s += dt * b
            host.idle_s += dt * (host.cores - b)
        for k, s in self.servers.items():
            s.cpu_ns += dt * s.vcpus * self.cpu_pct(k) / 100.0 * 1e9

    def memory_mb(self, server: str) -> float:
        s = self.servers[server]
        return s.ram_mb * (0.3 + 0.4 * self.cpu_pct(server) / 100.0)


class LoadExporter:
    """The model's series as a Prometheus custom collector (register it on a registry)."""

    def __init__(self, model: LoadModel, names: SeriesNames | None = None) -> None:
        self.model = model
        self.names = names or SeriesNames()
        self.names.validate()

    def describe(self) -> list[Metric]:
        return []  # the series change with the cloud: collect() at registration is wasted

    def collect(self) -> Iterator[Metric]:
        m, n = self.model, self.names
        with m.lock:
            m._advance()
            cpu = _family(n.host_cpu, "Seconds the CPUs spent in each mode.", ["cpu", "mode"],
                          n.host_label)  # fmt: skip
            total = GaugeMetricFamily("node_memory_MemTotal_bytes", "Memory total.",
                                      labels=[n.host_label])  # fmt: skip
            avail = GaugeMetricFamily("node_memory_MemAvailable_bytes", "Memory available.",
                                      labels=[n.host_label])  # fmt: skip
            used = dict.fromkeys(m.hosts, 0.0)
            for k, s in m.servers.items():
                used[s.host] += m.memory_mb(k)
            for h, host in m.hosts.items():
                if h in m.hidden:
                    continue
                for c in range(host.cores):
                    cpu.add_metric([h, str(c), n.idle_mode], host.idle_s / host.cores)
                    cpu.add_metric([h, str(c), "user"], host.busy_s / host.cores)
                total.add_metric([h], host.memory_mb * MIB)
                avail.add_metric([h], max(host.memory_mb - used[h], 0.0) * MIB)
            ns = _family(n.server_cpu, "CPU time used (ns).", [], n.server_label)
            mem = _family(n.server_memory, "Memory used (MB).", [], n.server_label)
            for k, s in m.servers.items():
                if k in m.hidden or s.host in m.hidden:
                    continue
                ns.add_metric([k], s.cpu_ns)
                mem.add_metric([k], m.memory_mb(k))
        yield from (cpu, total, avail, ns, mem)


def _family(
    name: str, doc: str, labels: list[str], key: str
) -> CounterMetricFamily | GaugeMetricFamily:
    if name.endswith("_total"):
        return CounterMetricFamily(name[: -len("_total")], doc, labels=[key, *labels])
    return GaugeMetricFamily(name, doc, labels=[key, *labels])


def follow(model: LoadModel, read: Callable[[], Inventory], every_s: float,
           stop: threading.Event) -> None:  # fmt: skip
    """Refresh ``model`` from ``read()`` every ``every_s`` until ``stop``; failures are
    logged and the last picture kept (the exporter keeps serving)."""
    while not stop.is_set():
        try:
            model.update(read())
        except Exception as e:  # the SDK's many failure types: keep serving the last picture
            log.warning("load exporter: inventory refresh failed: %s", str(e).splitlines()[0])
        stop.wait(every_s)
