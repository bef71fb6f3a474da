"""Prometheus metrics of the engine, on a registry passed in (never the global one).

Counters and the latency histogram are updated by the daemon as it works; per-host and
per-cluster gauges come from a custom collector that reads the latest immutable
:class:`~xdrs.engine.engine.ClusterView` of each cluster at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from placement import Reason
from xdrs.engine.engine import TRIGGERS, ClusterView

__all__ = ["EngineMetrics"]

DEAD_CATEGORIES = ("malformed", "oversized", "version", "type", "schema", "tombstone",
                   "unknown_cluster", "unknown_vm", "internal")  # fmt: skip
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class EngineMetrics:
    """The engine's instruments, registered on ``registry``."""

    def __init__(
        self, registry: CollectorRegistry, views: Callable[[], Mapping[str, ClusterView]]
    ) -> None:
        self.events = Counter(
            "xdrs_events_consumed_total",
            "Events consumed, by topic kind.",
            ["kind"],
            registry=registry,
        )
        self.samples = Counter(
            "xdrs_samples_absorbed_total",
            "VM samples folded into the engine's state.",
            registry=registry,
        )
        self.dead = Counter(
            "xdrs_dead_letters_total",
            "Messages sent to the dead-letter topic, by kind of fault.",
            ["reason"],
            registry=registry,
        )
        self.recommendations = Counter(
            "xdrs_recommendations_total",
            "Recommendations published.",
            ["cluster", "trigger"],
            registry=registry,
        )
        self.moves = Counter(
            "xdrs_recommended_moves_total",
            "Moves recommended, by reason.",
            ["cluster", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "xdrs_optimizer_duration_seconds",
            "Time of one optimiser run (state build, plan, ordering).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.lag = Gauge(
            "xdrs_consumer_lag_messages",
            "Messages not yet consumed, by topic.",
            ["topic"],
            registry=registry,
        )
        registry.register(_ClusterCollector(views))
        self._clusters: set[str] = set()
        # labelled series exist from the start, so that rate() sees their first increment
        for category in DEAD_CATEGORIES:
            self.dead.labels(category)
        for kind in ("inventory", "metrics", "actions"):
            self.events.labels(kind)

    def known_cluster(self, cluster: str) -> None:
        """Create a new cluster's labelled series at zero (once)."""
        if cluster in self._clusters:
            return
        self._clusters.add(cluster)
        for trigger in TRIGGERS:
            self.recommendations.labels(cluster, trigger)
        for reason in Reason:
            self.moves.labels(cluster, reason.name.lower())


class _ClusterCollector(Collector):
    def __init__(self, views: Callable[[], Mapping[str, ClusterView]]) -> None:
        self._views = views

    def collect(self) -> Iterator[GaugeMetricFamily]:
        views = dict(self._views())
        load = GaugeMetricFamily(
            "xdrs_host_load_ratio",
            "Host demand over physical size.",
            labels=["cluster", "host", "resource"],
        )
        cap = GaugeMetricFamily(
            "xdrs_host_capacity",
            "Host physical size (cores, bytes).",
            labels=["cluster", "host", "resource"],
        )
        imb = GaugeMetricFamily(
            "xdrs_cluster_imbalance", "Weighted sd of host load.", labels=["cluster", "kind"]
        )
        vms = GaugeMetricFamily("xdrs_cluster_vms", "VMs known.", labels=["cluster"])
        age = GaugeMetricFamily(
            "xdrs_collector_sample_age_seconds",
            "Age of the newest sample from the collector.",
            labels=["cluster"],
        )
        now = time.time()
        for name, v in views.items():
            for i, h in enumerate(v.hosts):
                load.add_metric([name, h, "cpu"], float(v.cpu_load[i]))
                load.add_metric([name, h, "memory"], float(v.mem_load[i]))
                cap.add_metric([name, h, "cpu"], float(v.capacity[i, 0]))
                cap.add_metric([name, h, "memory"], float(v.capacity[i, 1]) * 2**20)
            imb.add_metric([name, "current"], v.imbalance)
            imb.add_metric([name, "target"], v.target)
            vms.add_metric([name], v.vms)
            if v.last_sent > 0:
                age.add_metric([name], max(0.0, now - v.last_sent))
        yield from (load, cap, imb, vms, age)
