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
from collectors.replay.traces import Trace, TraceError
from xdrs.bus import BusConfig
from xdrs.bus.kafka import KafkaSink, create_topics, make_consumer, records
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs
from xdrs.services import add_bus_args, broker_for, bus_config

__all__ = ["DemoProgress", "apply_recommendations", "default_trace_dir", "register"]

log = logging.getLogger(__name__)
DRAIN_S = 10.0  # at the end, how long the engine may take to absorb what is in flight


def default_trace_dir() -> Path | None:
    """``$XDRS_TRACES``, else ``../shared/traces`` beside the checkout, else none."""
    env = os.environ.get("XDRS_TRACES")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[2] / "shared" / "traces"
    return guess if guess.is_dir() else None


def add_replay_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trace", default=DEFAULT.trace, metavar="planetlab:DAY")
    p.add_argument(
        "--trace-dir",
        type=Path,
        default=default_trace_dir(),
        metavar="DIR",
        help="folder holding planetlab/<day>/ (default $XDRS_TRACES or "
        "../shared/traces; the packaged day otherwise)",
    )
    p.add_argument("--scenario", type=Path, metavar="FILE", help="replay scenario JSON")
    p.add_argument(
        "--speed",
        type=float,
        default=4.0,
        metavar="STEPS/S",
        help="simulated 5-minute steps per second (default 4; 0: no pause)",
    )


def load_replay(args: argparse.Namespace) -> tuple[Scenario, Trace]:
    from xdrs.cli.plan import UsageError  # noqa: PLC0415 (cli imports this module)

    if args.speed < 0:
        raise UsageError(f"--speed: expected a number >= 0, got {args.speed}")
    try:
        scenario = load_scenario(args.scenario) if args.scenario else DEFAULT
        return scenario, load_trace(args.trace, args.trace_dir)
    except (ScenarioError, TraceError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"{e.filename}: {e.strerror}") from None


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the event pipeline on a replayed PlanetLab day")
    add_bus_args(p)
    add_replay_args(p)
    p.add_argument("--duration", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--threshold", type=int, choices=range(1, 6), default=3, metavar="1..5")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        metavar="PORT",
        help="Prometheus /metrics on 127.0.0.1:PORT (default: a free port)",
    )
    p.add_argument("--quiet", action="store_true", help="summary only")
    p.set_defaults(func=run_demo)


@dataclass
class DemoProgress:
    applied: int = 0
    failed: int = 0
    recommendations: int = 0
    first_sd: dict[str, float] = field(default_factory=dict)


def run_demo(args: argparse.Namespace) -> int:
    from xdrs.cli.plan import UsageError  # noqa: PLC0415 (cli imports this module)

    scenario, trace = load_replay(args)
    if args.duration <= 0:
        raise UsageError(f"--duration: expected a number > 0, got {args.duration}")
    with broker_for(args) as bootstrap:
        config = bus_config(args, "xdrs-demo", bootstrap)
        try:
            return _run(args, scenario, trace, config)
        except KafkaError as e:
            raise UsageError(f"Kafka at {bootstrap}: {e}") from None


def _run(args: argparse.Namespace, scenario: Scenario, trace: Trace, config: BusConfig) -> int:
    create_topics(config)
    registry = CollectorRegistry()
    engine = Engine(EngineArgs(threshold=args.threshold, cooldown_s=1.0, pending_s=30.0))
    daemon = EngineDaemon(config, engine, registry=registry)
    server, _ = start_http_server(args.metrics_port, addr="127.0.0.1", registry=registry)
    port = server.server_address[1]
    sink = KafkaSink(config)
    collector = ReplayCollector(scenario, trace, sink, speed=args.speed)
    stop, stop_feed, progress = threading.Event(), threading.Event(), DemoProgress()
    threads = [
        threading.Thread(target=daemon.run, args=(stop,), name="engine"),
        threading.Thread(target=collector.run, args=(stop_feed,), name="collector"),
        threading.Thread(
            target=apply_recommendations, args=(config, collector, progress, stop), name="actuator"
        ),
    ]
    embedded = "" if args.bootstrap_servers else " (embedded)"
    _say(
        args,
        f"xdrs demo: broker {config.bootstrap}{embedded}, "
        f"metrics http://127.0.0.1:{port}/metrics, trace {trace.name} "
        f"({len(collector.vm_ids)} VMs on {len(collector.hosts)} hosts in "
        f"{len(collector.clusters)} clusters), {args.speed:g} steps/s",
    )
    for t in threads:
        t.start()
    t0 = time.monotonic()
    try:
        _watch(args, daemon, collector, progress, t0, threads[1])
    finally:
        stop_feed.set()  # the collector stops first; the engine takes in what is in flight
        threads[1].join(15)
        _drain_engine(daemon, collector, DRAIN_S)
        stop.set()
        for t in threads:
            t.join(15)
        sink.close()
        server.shutdown()
    _summary(daemon, collector, progress, time.monotonic() - t0)
    return 0


def _drain_engine(daemon: EngineDaemon, collector: ReplayCollector, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while daemon.engine.samples < collector.samples_sent and time.monotonic() < deadline:
        time.sleep(0.05)


def apply_recommendations(
    config: BusConfig, collector: ReplayCollector, progress: DemoProgress, stop: threading.Event
) -> None:
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


def _apply_polled(consumer: Any, collector: ReplayCollector, progress: DemoProgress) -> None:
    for rec in records(consumer, timeout_ms=200):
        if isinstance(rec.event, Recommendation):
            progress.recommendations += 1
            for r in collector.apply(rec.event):
                progress.applied += r.status == "ok"
                progress.failed += r.status != "ok"
    consumer.commit()


def _watch(
    args: argparse.Namespace,
    daemon: EngineDaemon,
    collector: ReplayCollector,
    progress: DemoProgress,
    t0: float,
    feeder: threading.Thread,
) -> None:
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
        sds = " ".join(
            f"{c}={progress.first_sd[c]:.3f}->{v.imbalance:.3f}"
            for c, v in sorted(views.items())
            if c in progress.first_sd
        )
        _say(
            args,
            f"[{now - t0:5.1f}s] sim {_hhmm(collector.step_no)}  sd {sds}  "
            f"recs {progress.recommendations} moves {progress.applied}  "
            f"events/s {rate:,.0f}  dead {daemon.dead}",
        )
        if not feeder.is_alive() and rate == 0:
            break


def _hhmm(step: int) -> str:
    minutes = step * 5
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _summary(
    daemon: EngineDaemon, collector: ReplayCollector, progress: DemoProgress, wall: float
) -> None:
    lines = [
        f"xdrs demo: {wall:.1f} s, {collector.step_no} steps ({_hhmm(collector.step_no)} "
        f"simulated), {collector.samples_sent:,} samples sent, "
        f"{daemon.engine.samples:,} absorbed, {daemon.dead} dead-lettered",
        f"recommendations {daemon.n_published} published / {progress.recommendations} "
        f"received, moves applied {progress.applied}, refused {progress.failed}",
    ]
    lines.append("cluster      sd first  sd now  target  VMs")
    for c, v in sorted(daemon.views.items()):
        first = progress.first_sd.get(c, v.imbalance)
        lines.append(f"{c:<12} {first:8.3f} {v.imbalance:7.3f} {v.target:7.3f} {v.vms:5d}")
    print("\n".join(lines))


def _say(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        print(line, flush=True)
