"""The demo pipeline on one machine: replay collector, engine, exporter, demo actuator.

``run_demo`` runs, on a broker it is given, the trace-replay collector on a PlanetLab day,
the engine daemon and the Prometheus exporter; in the demo the replay platform applies the
engine's recommendations (:func:`apply_recommendations`), so the effect shows. Progress is
printed once a second and a summary at the end; ``DemoOptions.duration_s`` bounds the run.
The command line is ``xdrs.cli.demo``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, start_http_server

from collectors.events import Recommendation
from collectors.replay import ReplayCollector, Scenario
from collectors.replay.traces import Trace
from xdrs.bus import BusConfig
from xdrs.bus.kafka import KafkaSink, create_topics, make_consumer, records
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs
from xdrs.errors import UsageError

__all__ = ["DemoOptions", "DemoProgress", "apply_recommendations", "run_demo"]

log = logging.getLogger(__name__)
DRAIN_S = 10.0  # at the end, how long the engine may take to absorb what is in flight


@dataclass
class DemoProgress:
    applied: int = 0
    failed: int = 0
    recommendations: int = 0
    first_sd: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs.

    duration_s : wall-clock bound of the run (> 0).
    speed : simulated 5-minute steps per second (0: no pause).
    engine : the engine's arguments (threshold, cooldowns).
    metrics_port : Prometheus ``/metrics`` on 127.0.0.1 (0: a free port).
    quiet : summary only.
    embedded : the broker is the embedded one (said in the first line).
    """

    duration_s: float = 60.0
    speed: float = 4.0
    engine: EngineArgs = field(
        default_factory=lambda: EngineArgs(threshold=3, cooldown_s=1.0, pending_s=30.0)
    )
    metrics_port: int = 0
    quiet: bool = False
    embedded: bool = True


def run_demo(opts: DemoOptions, scenario: Scenario, trace: Trace, config: BusConfig) -> int:
    """Collector, engine, exporter and the demo actuator on ``config``'s broker."""
    try:
        return _run(opts, scenario, trace, config)
    except KafkaError as e:
        raise UsageError(f"Kafka at {config.bootstrap}: {e}") from None


def _run(opts: DemoOptions, scenario: Scenario, trace: Trace, config: BusConfig) -> int:
    create_topics(config)
    registry = CollectorRegistry()
    daemon = EngineDaemon(config, Engine(opts.engine), registry=registry)
    server, _ = start_http_server(opts.metrics_port, addr="127.0.0.1", registry=registry)
    port = server.server_address[1]
    sink = KafkaSink(config)
    collector = ReplayCollector(scenario, trace, sink, speed=opts.speed)
    stop, stop_feed, progress = threading.Event(), threading.Event(), DemoProgress()
    threads = [
        threading.Thread(target=daemon.run, args=(stop,), name="engine"),
        threading.Thread(target=collector.run, args=(stop_feed,), name="collector"),
        threading.Thread(
            target=apply_recommendations, args=(config, collector, progress, stop), name="actuator"
        ),
    ]
    embedded = " (embedded)" if opts.embedded else ""
    _say(
        opts,
        f"xdrs demo: broker {config.bootstrap}{embedded}, "
        f"metrics http://127.0.0.1:{port}/metrics, trace {trace.name} "
        f"({len(collector.vm_ids)} VMs on {len(collector.hosts)} hosts in "
        f"{len(collector.clusters)} clusters), {opts.speed:g} steps/s",
    )
    for t in threads:
        t.start()
    t0 = time.monotonic()
    try:
        _watch(opts, daemon, collector, progress, t0, threads[1])
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
    opts: DemoOptions,
    daemon: EngineDaemon,
    collector: ReplayCollector,
    progress: DemoProgress,
    t0: float,
    feeder: threading.Thread,
) -> None:
    last_consumed, last_t = 0, t0
    while time.monotonic() - t0 < opts.duration_s:
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
            opts,
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


def _say(opts: DemoOptions, line: str) -> None:
    if not opts.quiet:
        print(line, flush=True)
