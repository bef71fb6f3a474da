"""Prometheus metrics of the rebalancing daemon, read from its counts at scrape time.

Counters: ``xdrs_daemon_moves_total{status}`` (``started``, ``ok``, ``failed``, ``skipped``,
``held``), ``xdrs_daemon_skipped_total{why}`` (``held`` for cooldowns and host holds,
``stale``, ``expired``, ``old_metrics``, ``no_room``, ``maintenance``, ``earlier_failed``,
``never``, ``rejected``, ``superseded``, ``placement_changed``, ``below_margin``,
``other``) and
``xdrs_daemon_failed_total{why}`` (``timeout``, ``interrupted``, ``internal``,
``platform``). Gauges: ``xdrs_daemon_in_flight``, ``xdrs_daemon_waiting`` (moves queued
behind a limit), ``xdrs_daemon_held_back{why}`` (moves not running now: ``approval``,
``per_host``, ``per_cluster``, ``total``, ``rate``, ``no_metrics``),
``xdrs_daemon_pending_approvals`` (moves) and ``xdrs_daemon_pending_recommendations``.
Every label value is created at zero from the start (``rate()`` sees the first increase);
no per-VM or per-host label. :class:`MetricsEndpoint` serves a registry of its own on
``/metrics`` (a daemon process's: ``--metrics-addr``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from xdrs.daemon.core import FAIL_KINDS, SKIP_KINDS, Rebalancer, kind_of

__all__ = ["DaemonMetrics", "MetricsEndpoint", "held_back"]

STATUSES = ("started", "ok", "failed", "skipped", "held")
WAIT_KINDS = {"per-host": "per_host", "per-cluster": "per_cluster", "total": "total",
              "rate": "rate", "no": "no_metrics"}  # fmt: skip


class DaemonMetrics(Collector):
    """A custom collector over ``core()`` (``None`` until the daemon has started)."""

    def __init__(self, registry: CollectorRegistry, core: Callable[[], Rebalancer | None]) -> None:
        self.core = core
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        core = self.core()
        if core is None:
            yield from self._families(None)
            return
        with core.lock:  # the daemon's loop changes these
            yield from self._families(core)

    def _families(self, core: Rebalancer | None) -> Iterator[Metric]:
        c = core.counts if core is not None else None
        yield _labelled(CounterMetricFamily, "xdrs_daemon_moves", "Daemon records, by status.",
                        "status", STATUSES, c.by_status if c else {})  # fmt: skip
        yield _labelled(CounterMetricFamily, "xdrs_daemon_skipped", "Moves skipped, by reason.",
                        "why", (*sorted(set(SKIP_KINDS.values())), "other"),
                        c.skipped_by if c else {})  # fmt: skip
        yield _labelled(CounterMetricFamily, "xdrs_daemon_failed",
                        "Failed migrations, by reason.", "why",
                        (*sorted(FAIL_KINDS.values()), "platform"),
                        c.failed_by if c else {})  # fmt: skip
        held = held_back(core) if core is not None else {}
        yield _labelled(GaugeMetricFamily, "xdrs_daemon_held_back",
                        "Moves not running now, by what holds them.", "why",
                        ("approval", *WAIT_KINDS.values()), held)  # fmt: skip
        for name, doc, value in (
            ("xdrs_daemon_in_flight", "Migrations in flight.",
             len(core.executor.flights) if core else 0),
            ("xdrs_daemon_waiting", "Moves waiting behind a limit.",
             len(core.executor.waiting) if core else 0),
            ("xdrs_daemon_pending_approvals", "Moves waiting for an operator's approval.",
             held.get("approval", 0)),
            ("xdrs_daemon_pending_recommendations",
             "Recommendations with a move waiting for approval.", len(core.held) if core else 0),
        ):  # fmt: skip
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], value)
            yield g


class MetricsEndpoint:
    """A registry of its own served on ``http://HOST:PORT/metrics`` until :meth:`close`
    (port 0: a free one); a taken port raises :class:`OSError` here."""

    def __init__(self, host: str, port: int) -> None:
        self.registry = CollectorRegistry()
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)

    @property
    def url(self) -> str:
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def held_back(core: Rebalancer, cluster: str | None = None) -> dict[str, int]:
    """Moves not running now, by what holds them (``approval`` and :data:`WAIT_KINDS`'
    labels), in ``cluster`` or in all; the caller holds ``core.lock`` or the daemon is
    stopped."""
    out = {"approval": sum(len(keys) for rec, keys in core.held.values()
                           if cluster is None or rec.cluster == cluster)}  # fmt: skip
    for key, why in core.executor.waiting.items():
        if cluster is not None:
            rec = core.recent.get(key.rsplit("/", 1)[0])
            if rec is None or rec.cluster != cluster:
                continue
        k = kind_of(why, WAIT_KINDS, "total")
        out[k] = out.get(k, 0) + 1
    return out


def _labelled(family: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str, doc: str,
              label: str, values: tuple[str, ...], counts: dict[str, int]) -> Metric:  # fmt: skip
    m = family(name, doc, labels=[label])
    for v in dict.fromkeys((*values, *sorted(counts))):
        m.add_metric([v], counts.get(v, 0))
    return m
