"""``xdrs engine`` and ``xdrs replay``: the long-running processes of a deployment.

``xdrs engine`` consumes inventory, metrics and action results and publishes
recommendations, with the Prometheus exporter; several engines in one consumer group share
the clusters. ``xdrs replay`` is the trace-replay collector (``--apply`` also applies the
recommendations to the replayed cluster, as the demo does). Both run until SIGTERM or
Ctrl-C. With no ``--bootstrap-servers`` they start the embedded broker themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, start_http_server

from xdrs.bus import BusConfig, EmbeddedBroker, Topics
from xdrs.bus.broker import BrokerError
from xdrs.bus.kafka import create_topics

__all__ = ["add_bus_args", "bus_config", "register"]

log = logging.getLogger(__name__)
PASSWORD_ENV = "XDRS_KAFKA_SASL_PASSWORD"


def add_bus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT[,...]",
        help="Kafka to use (default: start the embedded broker)",
    )
    p.add_argument("--topic-prefix", default="xdrs.", metavar="PREFIX")
    p.add_argument("--client-id", metavar="NAME", help="Kafka client id (default: xdrs-<command>)")
    p.add_argument(
        "--partitions",
        type=int,
        default=4,
        metavar="N",
        help="partitions of the topics xdrs creates (engine scale-out unit)",
    )
    p.add_argument(
        "--kafka-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="kafka-python client setting, e.g. security_protocol=SASL_SSL; the SASL "
        f"password comes from ${PASSWORD_ENV}, never the command line",
    )


def bus_config(args: argparse.Namespace, client_id: str, bootstrap: str) -> BusConfig:
    from xdrs.cli.plan import UsageError  # noqa: PLC0415 (cli imports this module)

    extra: dict[str, Any] = {}
    for item in args.kafka_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--kafka-option: expected KEY=VALUE, got {item!r}")
        if "password" in key:
            raise UsageError(f"--kafka-option {key}: pass secrets in ${PASSWORD_ENV}")
        extra[key] = int(value) if value.isdigit() else value
    if os.environ.get(PASSWORD_ENV):
        extra["sasl_plain_password"] = os.environ[PASSWORD_ENV]
    try:
        return BusConfig(
            bootstrap,
            client_id=args.client_id or client_id,
            topics=Topics(args.topic_prefix),
            partitions=args.partitions,
            fast_groups=not args.bootstrap_servers,
            extra=extra,
        )
    except ValueError as e:
        raise UsageError(f"--bootstrap-servers/--kafka-option: {e}") from None


@contextlib.contextmanager
def broker_for(args: argparse.Namespace) -> Iterator[str]:
    """The bootstrap address to use: the given one, or an embedded broker's while in use."""
    from xdrs.cli.plan import UsageError  # noqa: PLC0415

    if args.bootstrap_servers:
        yield args.bootstrap_servers
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


def _until_signalled() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _metrics_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def register(sub: Any) -> None:
    p = sub.add_parser("engine", help="run the engine daemon (recommendations + /metrics)")
    add_bus_args(p)
    p.add_argument("--group", default="xdrs-engine", help="consumer group of the engines")
    p.add_argument(
        "--metrics-addr",
        type=_metrics_addr,
        default=("127.0.0.1", 9464),
        metavar="HOST:PORT",
        help="Prometheus /metrics (default 127.0.0.1:9464)",
    )
    p.add_argument("--threshold", type=int, choices=range(1, 6), default=3, metavar="1..5")
    p.add_argument(
        "--period",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="optimise every cluster at least this often",
    )
    p.add_argument("--max-moves", type=int, default=64, metavar="N")
    p.set_defaults(func=run_engine)
    r = sub.add_parser("replay", help="run the trace-replay collector")
    add_bus_args(r)
    from xdrs.demo import add_replay_args  # noqa: PLC0415

    add_replay_args(r)
    r.add_argument("--steps", type=int, default=None, metavar="N", help="stop after N steps")
    r.add_argument(
        "--apply",
        action="store_true",
        help="apply recommendations to the replayed cluster (demo actuator)",
    )
    r.set_defaults(func=run_replay)


def run_engine(args: argparse.Namespace) -> int:
    from xdrs.cli.plan import UsageError  # noqa: PLC0415
    from xdrs.engine.daemon import EngineDaemon  # noqa: PLC0415
    from xdrs.engine.engine import Engine, EngineArgs  # noqa: PLC0415

    try:
        engine = Engine(
            EngineArgs(threshold=args.threshold, period_s=args.period, max_moves=args.max_moves)
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    stop = _until_signalled()
    with broker_for(args) as bootstrap:
        config = bus_config(args, "xdrs-engine", bootstrap)
        _create(config)
        registry = CollectorRegistry()
        daemon = EngineDaemon(config, engine, group=args.group, registry=registry)
        try:
            server, _ = start_http_server(
                args.metrics_addr[1], addr=args.metrics_addr[0], registry=registry
            )
        except OSError as e:
            raise UsageError(f"--metrics-addr: {e.strerror or e}") from None
        log.warning("engine: bootstrap %s, metrics on %s:%d", bootstrap, *server.server_address)
        try:
            daemon.run(stop)
        finally:
            server.shutdown()
    return 0


def run_replay(args: argparse.Namespace) -> int:
    from xdrs.bus.kafka import KafkaSink  # noqa: PLC0415
    from xdrs.demo import DemoProgress, apply_recommendations, load_replay  # noqa: PLC0415

    scenario, trace = load_replay(args)
    stop = _until_signalled()
    with broker_for(args) as bootstrap:
        config = bus_config(args, "xdrs-replay", bootstrap)
        _create(config)
        from collectors.replay import ReplayCollector  # noqa: PLC0415

        collector = ReplayCollector(scenario, trace, KafkaSink(config), speed=args.speed)
        applier = None
        if args.apply:
            applier = threading.Thread(
                target=apply_recommendations, args=(config, collector, DemoProgress(), stop)
            )
            applier.start()
        try:
            collector.run(stop, steps=args.steps)
        finally:
            stop.set()
            if applier is not None:
                applier.join(15)
    return 0


def _create(config: BusConfig) -> None:
    from xdrs.cli.plan import UsageError  # noqa: PLC0415

    try:
        create_topics(config)
    except KafkaError as e:
        raise UsageError(f"Kafka at {config.bootstrap}: {e}") from None
