"""Prometheus metrics of the rebalancing daemon, read from its counts at scrape time.

``xdrs_daemon_moves_total{status}`` (``started``, ``ok``, ``failed``, ``skipped``, ``held``),
``xdrs_daemon_skipped_total{why}`` (the first word of the reason: ``held`` for cooldowns
and host holds, ``stale``, ``expired``, ``no`` for room, ``metrics``, ``never``,
``rejected``, ``superseded``, ...; a bounded set), ``xdrs_daemon_in_flight`` and
``xdrs_daemon_waiting`` (moves queued behind a limit). No per-VM or per-host label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from xdrs.daemon.core import Rebalancer

__all__ = ["DaemonMetrics"]


class DaemonMetrics(Collector):
    """A custom collector over ``core()`` (``None`` until the daemon has started)."""

    def __init__(self, registry: CollectorRegistry, core: Callable[[], Rebalancer | None]) -> None:
        self.core = core
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        core = self.core()
        moves = CounterMetricFamily("xdrs_daemon_moves", "Daemon records, by status.",
                                    labels=["status"])  # fmt: skip
        skipped = CounterMetricFamily("xdrs_daemon_skipped", "Moves skipped, by reason.",
                                      labels=["why"])  # fmt: skip
        flying = GaugeMetricFamily("xdrs_daemon_in_flight", "Migrations in flight.")
        waiting = GaugeMetricFamily("xdrs_daemon_waiting", "Moves waiting behind a limit.")
        if core is not None:
            for status, n in sorted(core.counts.by_status.items()):
                moves.add_metric([status], n)
            for why, n in sorted(core.counts.skipped_by.items()):
                skipped.add_metric([why], n)
            flying.add_metric([], len(core.executor.flights))
            waiting.add_metric([], len(core.executor.waiting))
        yield from (moves, skipped, flying, waiting)
