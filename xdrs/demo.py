"""``xdrs demo``: the whole pipeline on one machine, with nothing configured.

It starts the embedded broker (unless ``--bootstrap-servers`` is given), the trace-replay
collector on a PlanetLab day, the engine daemon and the Prometheus exporter; in the demo the
replay platform applies the engine's recommendations, so the effect shows. Progress is
printed once a second and a summary at the end; ``--duration`` bounds the run.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, start_http_server

from collectors.events import Recommendation
from collectors.replay import ReplayCollector, Scenario, load_scenario, load_trace
from collectors.replay.scenario import DEFAULT, ScenarioError
from collectors.replay.traces import TraceError
from xdrs.bus import BusConfig, EmbeddedBroker
from xdrs.bus.broker import BrokerError
from xdrs.bus.kafka import KafkaSink, create_topics, make_consumer, records
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs
from xdrs.engine.exporter import EngineMetrics

__all__ = ["default_trace_dir", "register"]

log = logging.getLogger(__name__)


def default_trace_dir() -> Path | None:
    """``$XDRS_TRACES``, else ``../shared/traces`` beside the checkout, else none."""
    env = os.environ.get("XDRS_TRACES")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[2] / "shared" / "traces"
    return guess if guess.is_dir() else None


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the event pipeline on a replayed PlanetLab day")
    p.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]",
                   help="Kafka to use (default: start the embedded broker)")  # fmt: skip
    p.add_argument("--trace", default=DEFAULT.trace, metavar="planetlab:DAY")
    p.add_argument("--trace-dir", type=Path, default=default_trace_dir(), metavar="DIR",
                   help="folder holding planetlab/<day>/ (default $XDRS_TRACES or "
                   "../shared/traces; the packaged day otherwise)")  # fmt: skip
    p.add_argument("--scenario", type=Path, metavar="FILE", help="replay scenario JSON")
    p.add_argument("--speed", type=float, default=4.0, metavar="STEPS/S",
                   help="simulated 5-minute steps per second (default 4)")  # fmt: skip
    p.add_argument("--duration", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--threshold", type=int, choices=range(1, 6), default=3, metavar="1..5")
    p.add_argument("--metrics-port", type=int, default=0, metavar="PORT",
                   help="Prometheus /metrics on 127.0.0.1:PORT (default: a free port)")  # fmt: skip
    p.add_argument("--topic-prefix", default="xdrs.", metavar="PREFIX")
    p.add_argument("--quiet", action="store_true", help="summary only")
    p.set_defaults(func=run_demo)


@dataclass
class _Progress:
    applied: int = 0
    failed: int = 0
    recommendations: int = 0
    first_sd: dict[str, float] = field(default_factory=dict)


def run_demo(args: argparse.Namespace) -> int:
    from xdrs.cli import UsageError  # noqa: PLC0415 (cli imports this module)

    try:
        scenario = load_scenario(args.scenario) if args.scenario else DEFAULT
        trace = load_trace(args.trace, args.trace_dir)
    except (ScenarioError, TraceError) as e:
        raise UsageError(str(e)) from None
    if args.speed < 0 or args.duration <= 0:
        raise UsageError("--speed must be >= 0 and --duration > 0")
    if args.bootstrap_servers:
        try:
            BusConfig(args.bootstrap_servers)
        except ValueError as e:
            raise UsageError(f"--bootstrap-servers: {e}") from None
    broker = None if args.bootstrap_servers else EmbeddedBroker()
    try:
        if broker is not None:
            broker.start()
        bootstrap = args.bootstrap_servers or (broker.bootstrap if broker else "")
        return _run(args, scenario, trace, bootstrap, embedded=broker is not None)
    except BrokerError as e:
        raise UsageError(str(e)) from None
    except KafkaError as e:
        where = args.bootstrap_servers or "the embedded broker"
        raise UsageError(f"Kafka at {where}: {e}") from None
    finally:
        if broker is not None:
            broker.stop()


def _run(args: argparse.Namespace, scenario: Scenario, trace: Any, bootstrap: str,
         embedded: bool) -> int:  # fmt: skip
    from xdrs.bus.config import Topics  # noqa: PLC0415

    config = BusConfig(bootstrap, client_id="xdrs-demo", topics=Topics(args.topic_prefix),
                       fast_groups=embedded)  # fmt: skip
    create_topics(config)
    registry = CollectorRegistry()
    engine = Engine(EngineArgs(threshold=args.threshold, cooldown_s=1.0, pending_s=30.0))
    daemon = EngineDaemon(config, engine)
    daemon.metrics = EngineMetrics(registry, lambda: daemon.views)
    server, _ = start_http_server(args.metrics_port, addr="127.0.0.1", registry=registry)
    port = server.server_address[1]
    sink = KafkaSink(config)
    collector = ReplayCollector(scenario, trace, sink, speed=args.speed)
    stop, progress = threading.Event(), _Progress()
    threads = [threading.Thread(target=daemon.run, args=(stop,), name="engine"),
               threading.Thread(target=collector.run, args=(stop,), name="collector"),
               threading.Thread(target=_actuate, args=(config, collector, progress, stop),
                                name="actuator")]  # fmt: skip
    _say(args, f"xdrs demo: broker {bootstrap}{' (embedded)' if embedded else ''}, "
         f"metrics http://127.0.0.1:{port}/metrics, trace {trace.name} "
         f"({len(collector.vm_ids)} VMs on {len(collector.hosts)} hosts in "
         f"{len(collector.clusters)} clusters), {args.speed:g} steps/s")  # fmt: skip
    for t in threads:
        t.start()
    t0 = time.monotonic()
    try:
        _watch(args, daemon, collector, progress, t0, threads[1])
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        sink.close()
        server.shutdown()
    _summary(daemon, collector, progress, time.monotonic() - t0)
    return 0


def _actuate(config: BusConfig, collector: ReplayCollector, progress: _Progress,
             stop: threading.Event) -> None:  # fmt: skip
    """Demo only: the replay platform applies every recommendation it receives."""
    consumer = make_consumer(config, "xdrs-demo-actuator", [config.topics.recommendations])
    try:
        while not stop.is_set():
            try:
                _apply_polled(consumer, collector, progress)
            except KafkaError as e:  # a redelivered recommendation is harmless: keys dedupe
                log.warning("actuator: %s; retrying", e)
                stop.wait(0.5)
    finally:
        consumer.close()


def _apply_polled(consumer: Any, collector: ReplayCollector, progress: _Progress) -> None:
    for rec in records(consumer, timeout_ms=200):
        if isinstance(rec.event, Recommendation):
            progress.recommendations += 1
            for r in collector.apply(rec.event):
                progress.applied += r.status == "ok"
                progress.failed += r.status != "ok"
    consumer.commit()


def _watch(args: argparse.Namespace, daemon: EngineDaemon, collector: ReplayCollector,
           progress: _Progress, t0: float, feeder: threading.Thread) -> None:  # fmt: skip
    last_consumed, last_t = 0, t0
    while time.monotonic() - t0 < args.duration:
        time.sleep(1.0)
        now = time.monotonic()
        views = daemon.views
        for c, v in views.items():
            if v.initial is not None:
                progress.first_sd.setdefault(c, v.initial)
        rate = (daemon.consumed - last_consumed) / (now - last_t)
        last_consumed, last_t = daemon.consumed, now
        sds = " ".join(f"{c}={progress.first_sd[c]:.3f}->{v.imbalance:.3f}"
                       for c, v in sorted(views.items()) if c in progress.first_sd)  # fmt: skip
        _say(args, f"[{now - t0:5.1f}s] sim {_hhmm(collector.step_no)}  sd {sds}  "
             f"recs {progress.recommendations} moves {progress.applied}  "
             f"events/s {rate:,.0f}  dead {daemon.dead}")  # fmt: skip
        if not feeder.is_alive() and rate == 0:
            break


def _hhmm(step: int) -> str:
    minutes = step * 5
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _summary(daemon: EngineDaemon, collector: ReplayCollector, progress: _Progress,
             wall: float) -> None:  # fmt: skip
    lines = [f"xdrs demo: {wall:.1f} s, {collector.step_no} steps ({_hhmm(collector.step_no)} "
             f"simulated), {collector.samples_sent:,} samples sent, "
             f"{daemon.engine.samples:,} absorbed, {daemon.dead} dead-lettered",
             f"recommendations {len(daemon.published)} published / {progress.recommendations} "
             f"received, moves applied {progress.applied}, refused {progress.failed}"]  # fmt: skip
    lines.append("cluster      sd first  sd now  target  VMs")
    for c, v in sorted(daemon.views.items()):
        first = progress.first_sd.get(c, v.imbalance)
        lines.append(f"{c:<12} {first:8.3f} {v.imbalance:7.3f} {v.target:7.3f} {v.vms:5d}")
    print("\n".join(lines))


def _say(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        print(line, flush=True)
