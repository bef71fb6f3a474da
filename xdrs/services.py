"""The long-running processes of a deployment, wired: broker, topics, engine, replay.

No command-line parsing here (that is ``xdrs.cli``): these functions take typed values.
``serve_engine`` runs the engine daemon with its Prometheus exporter until ``stop``. With no
bootstrap servers, :func:`broker_for` starts the embedded broker for the time of the run.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, start_http_server

from collectors.platform import Source
from collectors.replay import ReplayCollector, Scenario, Trace
from xdrs.bus import BusConfig, EmbeddedBroker
from xdrs.bus.broker import BrokerError
from xdrs.bus.kafka import KafkaSink, create_topics
from xdrs.daemon.access import ApiConfig
from xdrs.daemon.service import DaemonOptions
from xdrs.demo import DemoProgress, apply_recommendations
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs
from xdrs.errors import UsageError

__all__ = [
    "broker_for",
    "create_or_fail",
    "run_source",
    "serve_engine",
    "serve_replay",
    "until_signalled",
]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def broker_for(bootstrap: str | None) -> Iterator[str]:
    """The bootstrap address to use: the given one, or an embedded broker's while in use."""
    if bootstrap:
        yield bootstrap
        return
    broker = EmbeddedBroker()
    try:
        broker.start()
    except BrokerError as e:
        raise UsageError(str(e)) from None
    try:
        log.warning("embedded broker on %s", broker.bootstrap)
        yield broker.bootstrap
    finally:
        broker.stop()


def until_signalled() -> threading.Event:
    """An event set by SIGTERM or SIGINT (Ctrl-C)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def create_or_fail(config: BusConfig) -> None:
    """Create xdrs's topics; an unreachable or refusing broker is one clear error."""
    try:
        create_topics(config)
    except KafkaError as e:
        raise UsageError(f"Kafka at {config.bootstrap}: {e}") from None


def serve_engine(
    config: BusConfig,
    args: EngineArgs,
    group: str,
    metrics_addr: tuple[str, int],
    stop: threading.Event,
) -> None:
    """The engine daemon and its ``/metrics`` endpoint, until ``stop``."""
    create_or_fail(config)
    registry = CollectorRegistry()
    daemon = EngineDaemon(config, Engine(args), group=group, registry=registry)
    try:
        server, _ = start_http_server(metrics_addr[1], addr=metrics_addr[0], registry=registry)
    except OSError as e:
        raise UsageError(f"--metrics-addr: {e.strerror or e}") from None
    log.warning("engine: bootstrap %s, metrics on %s:%d", config.bootstrap, *server.server_address)
    try:
        daemon.run(stop)
    finally:
        server.shutdown()


def serve_replay(
    config: BusConfig,
    scenario: Scenario,
    trace: Trace,
    stop: threading.Event,
    *,
    speed: float = 4.0,
    steps: int | None = None,
    apply: bool = False,
    daemon: DaemonOptions | None = None,
    api: ApiConfig | None = None,
    registry: CollectorRegistry | None = None,
) -> None:
    """The trace-replay platform on the bus until ``stop`` or ``steps``.

    With ``apply`` the replayed cluster also applies the recommendations it receives (the
    rebalancing daemon over its instant mover, with ``daemon``'s options, its HTTP API
    on ``api`` and its metrics in ``registry`` if given; a real platform has its own daemon
    process).
    """
    create_or_fail(config)
    sink = KafkaSink(config)
    collector = ReplayCollector(scenario, trace, sink, speed=speed)
    applier = None
    if apply:
        applier = threading.Thread(
            target=apply_recommendations,
            args=(config, collector, DemoProgress(), stop, registry, daemon, api),
        )
        applier.start()
    try:
        collector.run(stop, steps=steps)
    finally:
        stop.set()
        if applier is not None:
            applier.join(15)
        sink.close()


def run_source(source: Source, stop: threading.Event, sink: KafkaSink) -> None:
    """A platform's source (:class:`~collectors.platform.Source`) on the bus until ``stop``
    or its end; the sink is closed (its last events flushed) whatever happens."""
    try:
        source.run(stop)
    finally:
        sink.close()
