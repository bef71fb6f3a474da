"""The rebalancing daemon on Kafka: one process per platform endpoint (one vCenter, one
replayed data centre), driving its :class:`~collectors.platform.Mover`.

It reads every partition of four topics by assignment (no consumer group: its state is
rebuilt from the topics, not from offsets): the compacted inventory from the start and the
metrics from their end (its :class:`~xdrs.daemon.picture.Picture`), the actions topic from
the start (the keys recorded before: never issued again; moves ``started`` without a result
are resolved; moves ``held`` wait again), and the recommendations topic from the start
(recommendations and approvals: the held ones come back, and a recommendation younger than
``max_age_s`` whose moves have no record resumes). Then it runs the
:class:`~xdrs.daemon.core.Rebalancer` on what arrives. Every record goes to the actions
topic; a ``started`` record is confirmed by the broker before the platform is called.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from collectors.events import ActionResult, Approval, Recommendation, inventory_key
from collectors.platform import Clock, Mover
from xdrs.bus.config import BusConfig
from xdrs.bus.kafka import DeadLetters, KafkaSink, Record, make_consumer, records
from xdrs.daemon.api import ApiConfig, ApiServer
from xdrs.daemon.control import Control
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.exporter import DaemonMetrics
from xdrs.daemon.limits import Limits
from xdrs.daemon.picture import Picture
from xdrs.daemon.policy import PolicyFile

__all__ = ["Clock", "DaemonOptions", "RebalanceDaemon", "serve"]

log = logging.getLogger(__name__)
T = TypeVar("T")
CONFIRM_S = 5.0
FLUSH_EVERY_S = 0.2
QUIET_POLLS = 2  # polls without history, after the end offsets, that end a rebuild
QUIET_MAX_S = 10.0  # ... or this long after the end offsets were reached


class _RealClock:
    """Real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class DaemonOptions:
    """limits : :class:`Limits`; policy : the automation policy (file or fixed);
    on_record : called with every record the daemon writes (progress displays);
    dry_run : describe each recommendation to ``report`` (:mod:`xdrs.daemon.dryrun`) and do
    nothing: no platform call, no record on the actions topic."""

    limits: Limits = field(default_factory=Limits)
    policy: PolicyFile = field(default_factory=PolicyFile)
    poll_ms: int = 50
    on_record: Callable[[ActionResult], None] | None = None
    dry_run: bool = False
    report: Callable[[str], None] = print


class RebalanceDaemon:
    """Applies the recommendations of ``mover``'s clusters until ``stop`` is set."""

    def __init__(self, config: BusConfig, mover: Mover, opts: DaemonOptions | None = None,
                 clock: Clock | None = None, clock_rate: float = 1.0) -> None:  # fmt: skip
        """clock_rate : seconds of ``clock`` per real second (a replay's scaled clock): the
        cooldowns rebuilt from the actions topic at start are converted with it."""
        self.config, self.mover, self.clock_rate = config, mover, clock_rate
        self.opts = opts or DaemonOptions()
        self.opts.limits.validate()
        self.clock: Clock = clock if clock is not None else _RealClock()
        self.picture = Picture()
        self.core: Rebalancer | None = None
        self.ready = threading.Event()  # set once the state is rebuilt from the topics
        self.dead = 0
        self._sink: KafkaSink | None = None
        self._last_flush = 0.0
        self._own: set[tuple[str, float, str]] = set()  # approvals this process published

    def control(self) -> Control:
        """The operator's side of this daemon (the HTTP API's runtime); its decisions are
        taken at once and put on the recommendations topic, the record of who decided."""
        return Control(lambda: self.core if self.ready.is_set() else None, self._publish)

    def _publish(self, a: Approval) -> None:
        assert self._sink is not None
        self._own.add((a.recommendation, a.ts, a.by))
        self._sink.publish("recommendations", inventory_key(a.cluster, "approval",
                                                            a.recommendation), a)  # fmt: skip

    def _now(self) -> float:
        return self.clock.monotonic()

    def _journal(self, r: ActionResult, confirm: bool) -> bool:
        assert self._sink is not None
        self._sink.publish("actions", inventory_key(r.cluster, "action", r.key), r)
        if confirm and not self._sink.try_flush(CONFIRM_S, f"{r.key} not started"):
            return False
        if self.opts.on_record is not None:
            self.opts.on_record(r)
        return True

    def run(self, stop: threading.Event) -> None:
        sink = self._sink = KafkaSink(self.config)
        consumer = make_consumer(self.config, None)
        dead = DeadLetters(sink, on_dead=self._count_dead)
        self.core = Rebalancer(self.mover, self.opts.policy, self.opts.limits, self.picture,
                               self._now, self._journal,
                               dry_run=self.opts.report if self.opts.dry_run else None,
                               clock_rate=self.clock_rate)  # fmt: skip
        try:
            self._rebuild(consumer, stop)
            self.ready.set()
            while not stop.is_set():
                self.step(consumer, dead)
        finally:
            self.core.close()
            for close in (lambda: sink.close(5), consumer.close):
                try:
                    close()
                except KafkaError as e:
                    log.warning("close: %s", e)

    # ---- start: the state from the topics --------------------------------------------------

    def _rebuild(self, consumer: KafkaConsumer, stop: threading.Event) -> None:
        t = self.config.topics
        parts = {name: _parts(consumer, name) for name in
                 (t.inventory, t.metrics, t.actions, t.recommendations)}  # fmt: skip
        consumer.assign([p for ps in parts.values() for p in ps])
        consumer.seek_to_end(*parts[t.metrics])
        history = parts[t.inventory] + parts[t.actions] + parts[t.recommendations]
        consumer.seek_to_beginning(*history)
        ends = _retrying(lambda: consumer.end_offsets(history), stop)
        actions: list[ActionResult] = []
        recs: list[Recommendation | Approval] = []
        quiet, reached = 0, 0.0

        def caught_up() -> bool:
            nonlocal quiet, reached
            old = 0
            for rec in records(consumer, timeout_ms=200):
                self._take_history(rec, actions, recs)
                old += rec.topic != t.metrics
            # the ends read at the start (a busy stream must not keep the rebuild going), and
            # then polls with no history: some brokers (Tansu) under-report end offsets, and
            # a rebuild cut short would run a finished move again
            if not all(consumer.position(p) >= ends[p] for p in history):
                return False
            reached = reached or time.monotonic()
            quiet = 0 if old else quiet + 1
            return quiet >= QUIET_POLLS or time.monotonic() - reached > QUIET_MAX_S

        while not stop.is_set() and not _retrying(caught_up, stop):
            pass
        assert self.core is not None
        self.core.restore(actions, [r for r in recs if isinstance(r, Recommendation)])
        fresh = time.time() - self.opts.limits.max_age_s
        for r in recs:
            try:
                if isinstance(r, Approval):
                    self.core.decide(r)
                elif r.ts >= fresh:
                    self.core.receive(r)
            except Exception:  # dead-lettered when it first arrived; a restart goes on
                log.exception("replaying %s %s failed", type(r).__name__, r.recommendation
                              if isinstance(r, Approval) else r.id)  # fmt: skip

    def _take_history(self, rec: Record, actions: list[ActionResult],
                      recs: list[Recommendation | Approval]) -> None:  # fmt: skip
        ev = rec.event
        if isinstance(ev, ActionResult):
            actions.append(ev)
        elif isinstance(ev, Recommendation | Approval):
            recs.append(ev)
        elif ev is not None:
            self.picture.apply(ev, self._now())

    # ---- the loop ---------------------------------------------------------------------------

    def step(self, consumer: KafkaConsumer, dead: DeadLetters) -> None:
        """One poll; fold in what came; start and finish moves."""
        assert self.core is not None
        try:
            batch = list(records(consumer, timeout_ms=self.opts.poll_ms))
        except KafkaError as e:
            log.warning("poll failed, retrying: %s", e)
            time.sleep(0.5)
            batch = []
        with self.core.lock:  # the HTTP API's threads read the picture and the core
            for rec in batch:
                self._handle(rec, dead)
            self.core.tick()
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_EVERY_S and self._sink is not None:
            self._last_flush = now
            self._sink.try_flush(CONFIRM_S, "records not confirmed yet")

    def _handle(self, rec: Record, dead: DeadLetters) -> None:
        ev = rec.event
        assert self.core is not None
        if ev is None:
            if rec.topic == self.config.topics.recommendations:
                dead.send(rec, rec.error, rec.category)
            return
        try:
            if isinstance(ev, Recommendation):
                self.core.receive(ev)
            elif isinstance(ev, Approval):
                if (ev.recommendation, ev.ts, ev.by) in self._own:
                    self._own.discard((ev.recommendation, ev.ts, ev.by))
                    return  # taken already, through the API
                why = self.core.decide(ev)
                if why and self.mover.owns(ev.cluster):
                    log.warning("approval of %s refused: %s", ev.recommendation, why)
            elif not isinstance(ev, ActionResult):
                self.picture.apply(ev, self._now())
        except Exception as e:  # one bad message must never stop the daemon
            log.exception("message at %s[%d]@%d failed", rec.topic, rec.partition, rec.offset)
            dead.send(rec, f"{type(e).__name__}: {str(e)[:300]}", "internal")

    def _count_dead(self, category: str) -> None:
        self.dead += 1


def _parts(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def _retrying(fn: Callable[[], T], stop: threading.Event) -> T:
    """``fn()``, called again every half second while the broker is away (or until stopped)."""
    while True:
        try:
            return fn()
        except KafkaError as e:
            if stop.is_set():
                raise
            log.warning("broker unavailable while rebuilding, retrying: %s", e)
            stop.wait(0.5)


def serve(config: BusConfig, mover: Mover, opts: DaemonOptions, stop: threading.Event,
          api: ApiConfig | None = None,
          registry: CollectorRegistry | None = None) -> RebalanceDaemon:  # fmt: skip
    """Run a daemon over ``mover`` until ``stop``, with its HTTP API if ``api`` is given (its
    port is bound first: a taken port fails before anything runs) and its metrics
    (:class:`~xdrs.daemon.exporter.DaemonMetrics`) in ``registry`` if given; the daemon, for
    its counts."""
    daemon = RebalanceDaemon(config, mover, opts)
    if registry is not None:
        DaemonMetrics(registry, lambda: daemon.core)
    server = ApiServer(daemon.control(), api) if api is not None else None
    if server is not None:
        server.start()
    try:
        daemon.run(stop)
    finally:
        if server is not None:
            server.close()
    return daemon
