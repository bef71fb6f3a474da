"""Metrics as plain :class:`MetricSample` records: quickStats and PerformanceManager.

quickStats come free with every inventory collection. QueryPerf asks for the realtime
(``intervalId=20``) series of many entities in one call per batch, with ``maxSample`` set
(vCenter and the simulator return no samples without it); samples come newest first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from collectors.vsphere._sdk import vim
from collectors.vsphere.records import Inventory, MetricSample

__all__ = ["COUNTERS", "PerfCollector", "quickstats_samples"]

# counter name -> unit of its value once converted (vSphere reports memory in KiB)
COUNTERS = {
    "cpu.usagemhz.average": "MHz",
    "mem.consumed.average": "MiB",
    "mem.active.average": "MiB",
}
KIB_COUNTERS = {"mem.consumed.average", "mem.active.average"}
REALTIME = 20


def quickstats_samples(inv: Inventory) -> list[MetricSample]:
    """Host and VM CPU (MHz) and memory (MiB) from the quickStats of one inventory."""
    ts = inv.collected_at
    out: list[MetricSample] = []
    for h in inv.hosts:
        out.append(MetricSample(h.id, "host", "cpu.usagemhz.average", ts, h.cpu_usage_mhz,
                                "MHz", "quickstats"))  # fmt: skip
        out.append(MetricSample(h.id, "host", "mem.consumed.average", ts, h.mem_usage_mib,
                                "MiB", "quickstats"))  # fmt: skip
    for v in inv.vms:
        if not v.powered_on:
            continue
        out.append(MetricSample(v.id, "vm", "cpu.usagemhz.average", ts, v.cpu_usage_mhz,
                                "MHz", "quickstats"))  # fmt: skip
        out.append(MetricSample(v.id, "vm", "mem.consumed.average", ts, v.mem_consumed_mib,
                                "MiB", "quickstats"))  # fmt: skip
        out.append(MetricSample(v.id, "vm", "mem.active.average", ts, v.mem_active_mib,
                                "MiB", "quickstats"))  # fmt: skip
    return out


class PerfCollector:
    """Batched QueryPerf over many hosts and VMs.

    Parameters
    ----------
    content : ServiceContent
    batch : int
        Entities per QueryPerf call (vCenter limits a call's size; 250 is a common choice).
    max_sample : int
        Samples per entity and counter (1 = the newest 20 s value).
    """

    def __init__(self, content: Any, *, batch: int = 250, max_sample: int = 1) -> None:
        if batch < 1 or max_sample < 1:
            raise ValueError("batch and max_sample: expected integers >= 1")
        self.pm = content.perfManager
        self.stub = content.propertyCollector._stub
        self.batch = batch
        self.max_sample = max_sample
        self.ids: dict[str, int] = {}
        for c in self.pm.perfCounter:
            name = f"{c.groupInfo.key}.{c.nameInfo.key}.{c.rollupType}"
            if name in COUNTERS:
                self.ids[name] = c.key
        self.names = {v: k for k, v in self.ids.items()}

    def query(self, entities: Iterable[tuple[str, str]]) -> list[MetricSample]:
        """Samples for ``(kind, id)`` pairs, kind ``host`` or ``vm``; one call per batch."""
        ents = list(entities)
        metric_ids = [vim.PerformanceManager.MetricId(counterId=k, instance="")
                      for k in self.ids.values()]  # fmt: skip
        out: list[MetricSample] = []
        for lo in range(0, len(ents), self.batch):
            specs = [self._spec(kind, oid, metric_ids) for kind, oid in ents[lo : lo + self.batch]]
            for series in self.pm.QueryPerf(querySpec=specs) or []:
                out.extend(self._parse(series))
        return out

    def _spec(self, kind: str, oid: str, metric_ids: list[Any]) -> Any:
        return vim.PerformanceManager.QuerySpec(
            entity=self._ref(kind, oid), metricId=metric_ids, intervalId=REALTIME,
            maxSample=self.max_sample, format="normal",
        )  # fmt: skip

    def _ref(self, kind: str, oid: str) -> Any:
        cls = vim.HostSystem if kind == "host" else vim.VirtualMachine
        return cls(oid, self.stub)

    def _parse(self, series: Any) -> list[MetricSample]:
        ent = series.entity
        kind = "host" if isinstance(ent, vim.HostSystem) else "vm"
        stamps = [_unix(s.timestamp) for s in series.sampleInfo or []]
        out = []
        for v in series.value or []:
            name = self.names.get(v.id.counterId)
            if name is None:
                continue
            scale = 1 / 1024 if name in KIB_COUNTERS else 1.0
            for ts, x in zip(stamps, v.value or [], strict=False):
                if x >= 0:  # -1 marks a missing sample
                    out.append(MetricSample(str(ent._moId), kind, name, ts, x * scale,
                                            COUNTERS[name], "perf"))  # fmt: skip
        return out


def _unix(t: dt.datetime) -> float:
    return t.timestamp() if t.tzinfo else t.replace(tzinfo=dt.UTC).timestamp()
