"""The demo pipeline on one machine: replay collector, engine, exporter, rebalancing daemon.

``run_demo`` runs, on a broker it is given, the trace-replay collector on a PlanetLab day,
the engine daemon, the Prometheus exporter and the rebalancing daemon
(:class:`xdrs.daemon.service.RebalanceDaemon`) at ``full`` automation over the replay
platform's timed mover (migrations take memory / link time on a clock running at the
replay's speed, and fail at ``fail_rate``), so the effect shows. Progress is printed once a
second (in-flight and failed moves included) and a summary at the end, which says why a
cluster missed its target: its skipped and failed moves by reason, and what holds its
moves back now; ``DemoOptions.duration_s`` bounds the run. The command line is
``xdrs.cli.demo``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, start_http_server

from collectors.events import ActionResult
from collectors.platform import Mover
from collectors.replay import ReplayCollector, Scenario
from collectors.replay.mover import LinkModel, ScaledClock, TimedMover
from collectors.replay.traces import Trace
from xdrs.bus import BusConfig
from xdrs.bus.kafka import KafkaSink, create_topics
from xdrs.daemon.access import ApiConfig
from xdrs.daemon.api import ApiServer
from xdrs.daemon.core import FAIL_KINDS, SKIP_KINDS, Rebalancer, kind_of
from xdrs.daemon.exporter import DaemonMetrics, held_back
from xdrs.daemon.limits import PLATFORM_LIMITS, Limits
from xdrs.daemon.policy import PolicyFile
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs
from xdrs.errors import UsageError

__all__ = ["DemoOptions", "DemoProgress", "apply_recommendations", "run_demo", "why_not"]

log = logging.getLogger(__name__)
DRAIN_S = 10.0
# at the end, how long the engine may take to absorb what is in flight


@dataclass
class DemoProgress:
    """What the rebalancing daemon recorded (updated as it records); per cluster, the
    recommendations acted on and the skipped and failed moves by the kind of reason (the
    exporter's labels: ``skipped:old_metrics``, ``failed:platform``)."""

    applied: int = 0
    failed: int = 0
    skipped: int = 0
    recommendations: int = 0
    first_sd: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, Counter[str]] = field(default_factory=dict)
    recs_of: Counter[str] = field(default_factory=Counter)
    _recs: set[str] = field(default_factory=set)

    def record(self, r: ActionResult) -> None:
        self.applied += r.status == "ok"
        self.failed += r.status == "failed"
        self.skipped += r.status == "skipped"
        if r.recommendation not in self._recs:
            self._recs.add(r.recommendation)
            self.recommendations += 1
            self.recs_of[r.cluster] += 1
        if r.status in ("skipped", "failed"):
            kinds, other = (
                (SKIP_KINDS, "other") if r.status == "skipped" else (FAIL_KINDS, "platform")
            )
            why = kind_of(r.error, kinds, other)
            self.reasons.setdefault(r.cluster, Counter())[f"{r.status}:{why}"] += 1


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs.

    duration_s : wall-clock bound of the run (> 0).
    speed : simulated 5-minute steps per second (0: no pause).
    engine : the engine's arguments (threshold, cooldowns).
    metrics_port : Prometheus ``/metrics`` on 127.0.0.1 (0: a free port).
    quiet : summary only.
    embedded : the broker is the embedded one (said in the first line).
    link : the replay mover's migration model (link, dirty rate, failure rate).
    automation : the daemon's automation policy (``full`` everywhere without one).
    limits : the daemon's limits, times in platform seconds.
    dry_run : the daemon prints what it would do and does nothing.
    api : serve the daemon's HTTP JSON API there.
    """

    duration_s: float = 60.0
    speed: float = 4.0
    engine: EngineArgs = field(
        default_factory=lambda: EngineArgs(threshold=3, cooldown_s=1.0, pending_s=30.0)
    )
    metrics_port: int = 0
    quiet: bool = False
    embedded: bool = True
    link: LinkModel = field(default_factory=LinkModel)
    automation: PolicyFile | None = None
    limits: Limits = field(default_factory=lambda: PLATFORM_LIMITS["replay"])
    dry_run: bool = False
    api: ApiConfig | None = None


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
    clock = _replay_clock(collector)
    mover = TimedMover(collector, opts.link, clock, seed=scenario.seed)
    rebalancer = _rebalancer(config, mover, progress, clock, opts)
    DaemonMetrics(registry, lambda: rebalancer.core)
    api = ApiServer(rebalancer.control(), opts.api) if opts.api is not None else None
    threads = [
        threading.Thread(target=daemon.run, args=(stop,), name="engine"),
        threading.Thread(target=collector.run, args=(stop_feed,), name="collector"),
        threading.Thread(target=rebalancer.run, args=(stop,), name="rebalancer"),
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
    if api is not None:
        api.start()
        _say(opts, f"rebalancing daemon API on {api.url}/")
    t0 = time.monotonic()
    try:
        _watch(opts, daemon, collector, progress, t0, threads[1], rebalancer)
    finally:
        if api is not None:
            api.close()
        stop_feed.set()  # the collector stops first; the engine takes in what is in flight
        threads[1].join(15)
        _drain_engine(daemon, collector, DRAIN_S)
        stop.set()
        for t in threads:
            t.join(15)
        sink.close()
        server.shutdown()
    _summary(daemon, collector, progress, time.monotonic() - t0)
    _why_not(daemon, progress, rebalancer.core)
    return 0


def _drain_engine(daemon: EngineDaemon, collector: ReplayCollector, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while daemon.engine.samples < collector.samples_sent and time.monotonic() < deadline:
        time.sleep(0.05)


def _rebalancer(config: BusConfig, mover: Mover, progress: DemoProgress, clock: ScaledClock,
                opts: DemoOptions) -> RebalanceDaemon:  # fmt: skip
    """The rebalancing daemon (``full`` automation unless a policy is given)."""
    daemon = DaemonOptions(limits=opts.limits, policy=opts.automation or PolicyFile(),
                           on_record=progress.record, dry_run=opts.dry_run)  # fmt: skip
    return RebalanceDaemon(config, mover, daemon, clock=clock, clock_rate=clock.scale)


def apply_recommendations(
    config: BusConfig,
    collector: ReplayCollector,
    progress: DemoProgress,
    stop: threading.Event,
    registry: CollectorRegistry | None = None,
    opts: DaemonOptions | None = None,
    api: ApiConfig | None = None,
) -> None:
    """The rebalancing daemon over the replayed cluster, its moves instant (the collector's
    own mover), until ``stop``: ``xdrs replay --apply`` and tests. ``full`` automation and
    the replay's limits unless ``opts`` say otherwise; its clock is the replay's (cooldowns
    and holds are in the replay's seconds); its metrics go to ``registry`` and its HTTP API
    is served on ``api`` if given."""
    base = opts if opts is not None else DaemonOptions(limits=PLATFORM_LIMITS["replay"])
    clock = _replay_clock(collector)
    rebalancer = RebalanceDaemon(config, collector, replace(base, on_record=progress.record),
                                 clock=clock, clock_rate=clock.scale)  # fmt: skip
    if registry is not None:
        DaemonMetrics(registry, lambda: rebalancer.core)
    server = ApiServer(rebalancer.control(), api) if api is not None else None
    if server is not None:
        server.start()
    try:
        rebalancer.run(stop)
    finally:
        if server is not None:
            server.close()


def _replay_clock(collector: ReplayCollector) -> ScaledClock:
    """Platform time: one trace step per ``1 / speed`` wall seconds (speed 0, no pause
    between steps: real time)."""
    speed = collector.speed
    return ScaledClock(speed * collector.trace.step_s if speed > 0 else 1.0)


def _watch(
    opts: DemoOptions,
    daemon: EngineDaemon,
    collector: ReplayCollector,
    progress: DemoProgress,
    t0: float,
    feeder: threading.Thread,
    rebalancer: RebalanceDaemon,
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
            f"recs {progress.recommendations} moves {progress.applied} "
            f"in flight {_in_flight(rebalancer)} failed {progress.failed}  "
            f"events/s {rate:,.0f}  dead {daemon.dead}",
        )
        if not feeder.is_alive() and rate == 0:
            break


def _in_flight(rebalancer: RebalanceDaemon) -> int:
    core = rebalancer.core
    return 0 if core is None else len(core.executor.flights)


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
        f"acted on, moves applied {progress.applied}, refused {progress.failed}, "
        f"skipped {progress.skipped}",
    ]
    lines.append("cluster      sd first  sd now  target  VMs")
    for c, v in sorted(daemon.views.items()):
        first = progress.first_sd.get(c, v.imbalance)
        lines.append(f"{c:<12} {first:8.3f} {v.imbalance:7.3f} {v.target:7.3f} {v.vms:5d}")
    print("\n".join(lines))


def _why_not(daemon: EngineDaemon, progress: DemoProgress, core: Rebalancer | None) -> None:
    """For each cluster whose imbalance is above its target: why."""
    for c, v in sorted(daemon.views.items()):
        if v.imbalance <= v.target:
            continue
        held = held_back(core, c) if core is not None else {}
        print(why_not(c, v.imbalance, v.target, progress.recs_of[c],
                      progress.reasons.get(c, Counter()), held))  # fmt: skip


def why_not(cluster: str, sd: float, target: float, recs: int, reasons: Counter[str],
            held: dict[str, int]) -> str:  # fmt: skip
    """One line: ``cluster`` missed its target, its recommendations acted on, its skipped
    and failed moves by reason (``reasons``: :attr:`DemoProgress.reasons`' counts) and its
    moves held back now by cause (``held``: :func:`~xdrs.daemon.exporter.held_back`)."""
    parts = [f"{recs} recommendation(s) acted on" if recs else
             "no recommendation acted on (the engine found no move worth its margin, or "
             "the daemon ran none)"]  # fmt: skip
    for status in ("skipped", "failed"):
        kinds = {k.split(":", 1)[1]: n for k, n in reasons.most_common()
                 if k.startswith(status + ":")}  # fmt: skip
        if kinds:
            detail = ", ".join(f"{k} {n}" for k, n in kinds.items())
            parts.append(f"{status} {sum(kinds.values())} ({detail})")
    now = {k: n for k, n in held.items() if n}
    parts.append("held back now: " + (", ".join(f"{k} {n}" for k, n in sorted(now.items()))
                                      if now else "nothing"))  # fmt: skip
    return f"{cluster} missed its target (sd {sd:.3f} > {target:.3f}): " + "; ".join(parts)


def _say(opts: DemoOptions, line: str) -> None:
    if not opts.quiet:
        print(line, flush=True)
