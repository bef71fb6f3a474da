"""The engine daemon: the Kafka loop around :class:`~xdrs.engine.engine.Engine`.

Each loop polls inventory, metrics and action results, folds them into the cluster tables,
runs the optimiser on the clusters that need it, publishes the recommendations, and only
then commits the consumed offsets. Engine processes in one consumer group share the clusters
by partition: when a process is given a partition it re-reads that partition of the
compacted inventory topic from the start, so a new or restarted process rebuilds the state
from the topics. A message that fails validation goes to the dead-letter topic with its
reason; nothing in one message can stop the loop. A bad inventory message met again while
rebuilding (below the group's committed offset) is not dead-lettered a second time: it is
counted in ``replayed_bad``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import msgspec
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from collectors.events import Event, MetricBatch, Recommendation, inventory_key
from xdrs.bus.config import BusConfig, cluster_partition
from xdrs.bus.kafka import DeadLetters, KafkaSink, Record, make_consumer, records
from xdrs.engine.engine import ClusterView, Engine
from xdrs.engine.exporter import EngineMetrics
from xdrs.engine.rejoin import Rejoin

__all__ = ["EngineDaemon"]

log = logging.getLogger(__name__)
VIEW_EVERY_S = 0.5
LAG_EVERY_S = 2.0
FLUSH_TIMEOUT_S = 5.0
PARK_S = 10.0  # how long samples of a VM not (yet) in the inventory wait before dead-letter
QUIET_POLLS = 2  # polls in a row without inventory before metrics flow after a catch-up
HOLD_MAX_S = 30.0  # metrics are never held back longer than this
PUBLISHED_KEPT = 1000  # recent recommendations kept for inspection (tests, the demo)


class EngineDaemon:
    """Runs an :class:`Engine` against the bus until ``stop`` is set.

    Parameters
    ----------
    config : BusConfig
    engine : Engine
    metrics : EngineMetrics, optional
    group : str
        Consumer group shared by all engine processes.
    registry : prometheus_client.CollectorRegistry, optional
        Where the engine's metrics are registered (none without it).
    """

    def __init__(self, config: BusConfig, engine: Engine, group: str = "xdrs-engine",
                 registry: CollectorRegistry | None = None) -> None:  # fmt: skip
        self.config = config
        self.engine = engine
        self.metrics = None if registry is None else EngineMetrics(registry, lambda: self.views)
        self.group = group
        self.views: Mapping[str, ClusterView] = {}
        self.published: deque[Recommendation] = deque(maxlen=PUBLISHED_KEPT)
        self.n_published = 0
        self.consumed = 0
        self.dead = 0
        self.replayed_bad = 0
        self.failures = 0
        self.rejoin = Rejoin()  # a member given no partition rejoins (see xdrs.engine.rejoin)
        self._seen_below: dict[TopicPartition, int] = {}  # committed offsets at a rebuild
        self._need_committed: list[TopicPartition] = []
        self._owned: set[int] = set()
        self._last_view = self._last_lag = 0.0
        self._pending_commit = False
        self._held: list[TopicPartition] = []
        self._inventory_ends: dict[TopicPartition, int] = {}
        self._need_ends: list[TopicPartition] = []
        self._quiet_polls = 0
        self._held_since = 0.0
        self.park_s = PARK_S
        self._parked: list[tuple[float, Record, MetricBatch]] = []

    # ---- loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        t = self.config.topics
        consumer = make_consumer(self.config, self.group)
        topics, listener = [t.inventory, t.metrics, t.actions], _Listener(self, consumer)
        consumer.subscribe(topics, listener=listener)
        sink = KafkaSink(self.config)
        dead = DeadLetters(sink, on_dead=self._count_dead)
        try:
            while not stop.is_set():
                self.step(consumer, sink, dead)
                if self.rejoin.due():
                    log.warning("group %s gave this engine no partition (%d rejoins so far): "
                                "rejoining", self.group, self.rejoin.count)  # fmt: skip
                    consumer.unsubscribe()
                    consumer.subscribe(topics, listener=listener)
        finally:
            _close(consumer, sink)

    def step(self, consumer: KafkaConsumer, sink: KafkaSink, dead: DeadLetters) -> None:
        """One poll, absorb, optimise, publish, commit cycle."""
        try:
            batch = list(records(consumer, timeout_ms=100))
        except KafkaError as e:
            log.warning("poll failed, retrying: %s", e)
            time.sleep(0.5)
            return
        self._load_committed(consumer)
        for rec in batch:
            self._handle(rec, dead)
        self._retry_parked(dead)
        inv = self.config.topics.inventory
        self._quiet_polls = 0 if any(r.topic == inv for r in batch) else self._quiet_polls + 1
        self._resume_when_caught_up(consumer)
        self._pending_commit |= bool(batch)
        self._optimise(sink)
        if self._pending_commit and _flush(sink):
            self._pending_commit = not _commit(consumer)
        self._refresh(consumer)

    def _handle(self, rec: Record, dead: DeadLetters) -> None:
        """Absorb one record; whatever cannot be taken is dead-lettered with its reason."""
        self.consumed += 1
        kind = rec.topic.removeprefix(self.config.topics.prefix)
        if self.metrics is not None:
            self.metrics.events.labels(kind).inc()
        if rec.event is None:
            self._dead_letter(rec, rec.error, rec.category, dead)
            return
        try:
            category, reason = self._absorb(rec, rec.event)
        except Exception as e:  # one bad event must never stop the daemon
            log.exception("event at %s[%d]@%d failed", rec.topic, rec.partition, rec.offset)
            category, reason = "internal", f"{type(e).__name__}: {str(e)[:300]}"
        if reason:
            self._dead_letter(rec, reason, category, dead)

    def _dead_letter(self, rec: Record, reason: str, category: str, dead: DeadLetters) -> None:
        """Dead-letter ``rec``, unless a rebuild met it again below the committed offset: a
        previous run (this group's) dead-lettered it already."""
        if rec.offset < self._seen_below.get(TopicPartition(rec.topic, rec.partition), 0):
            self.replayed_bad += 1
            log.debug("%s[%d]@%d rejected again while rebuilding: %s", rec.topic,
                      rec.partition, rec.offset, reason)  # fmt: skip
            return
        dead.send(rec, reason, category)

    def _load_committed(self, consumer: KafkaConsumer) -> None:
        """Where this group had committed the inventory partitions just re-read from the
        start (asked here, not in the IO thread that assigned them). Unknown on a broker
        error: then the rebuild dead-letters again rather than wait."""
        need, self._need_committed = self._need_committed, []
        for tp in need:
            try:
                self._seen_below[tp] = consumer.committed(tp) or 0
            except KafkaError as e:
                log.warning("committed offset of %s[%d] unknown: %s", tp.topic, tp.partition, e)

    def _absorb(self, rec: Record, event: Event) -> tuple[str, str]:
        before = self.engine.samples
        category, reason = self.engine.apply(event)
        if self.metrics is not None and self.engine.samples > before:
            self.metrics.samples.inc(self.engine.samples - before)
        if category == "unknown_vm" and isinstance(event, MetricBatch):
            self._park(rec, event)  # its inventory may be a poll behind (other topic)
            return "", ""
        return category, reason

    def _park(self, rec: Record, b: MetricBatch) -> None:
        known = self.engine.tables[b.cluster].vm_row
        rest = _only(b, {v for v in b.vms if v not in known})
        self._parked.append((time.monotonic() + self.park_s, rec, rest))

    def _retry_parked(self, dead: DeadLetters) -> None:
        """Samples parked for unknown VMs: taken once the VM is known, dead-lettered with
        their reason when it is still unknown after ``park_s``."""
        if not self._parked:
            return
        now, still = time.monotonic(), []
        for deadline, rec, b in self._parked:
            before = self.engine.samples
            try:
                unknown = self.engine.absorb_late(b)
            except Exception as e:  # as in _handle: the batch is lost, the daemon is not
                log.exception("parked batch of %s failed", b.host)
                dead.send(rec, f"{type(e).__name__}: {str(e)[:300]}", "internal")
                continue
            if self.metrics is not None and self.engine.samples > before:
                self.metrics.samples.inc(self.engine.samples - before)
            if not unknown:
                continue
            if now < deadline:
                still.append((deadline, rec, _only(b, set(unknown))))
            else:
                n, first = len(unknown), unknown[0]
                dead.send(rec, f"metrics for {n} unknown VM(s) of {b.cluster!r} after "
                          f"{self.park_s:g} s: {first!r}...", "unknown_vm")  # fmt: skip
        self._parked = still

    def _optimise(self, sink: KafkaSink) -> None:
        now = time.monotonic()
        for cluster, trigger in self.engine.due(now):
            t0 = time.perf_counter()
            try:
                rec = self.engine.recommend(cluster, trigger, now)
            except Exception:  # one cluster's failure must not stop the daemon or the others
                log.exception("optimiser failed on cluster %s (%s)", cluster, trigger)
                self.failures += 1
                continue
            if self.metrics is not None:
                self.metrics.latency.observe(time.perf_counter() - t0)
            if rec is None:
                continue
            sink.publish("recommendations", inventory_key(cluster, "recommendation", rec.id), rec)
            self._pending_commit = True
            self.published.append(rec)
            self.n_published += 1
            self._count_rec(rec)

    def _count_rec(self, rec: Recommendation) -> None:
        if self.metrics is None:
            return
        self.metrics.recommendations.labels(rec.cluster, rec.trigger).inc()
        for m in rec.moves:
            self.metrics.moves.labels(rec.cluster, m.reason).inc()

    def _count_dead(self, category: str) -> None:
        self.dead += 1
        if self.metrics is not None:
            self.metrics.dead.labels(category).inc()

    def _refresh(self, consumer: KafkaConsumer) -> None:
        now = time.monotonic()
        if now - self._last_view >= VIEW_EVERY_S:
            self._last_view = now
            views = {c: self.engine.view(c) for c in list(self.engine.tables)}
            self.views = {c: v for c, v in views.items() if v is not None}
            if self.metrics is not None:
                for c in self.views:
                    self.metrics.known_cluster(c)
        if self.metrics is not None and now - self._last_lag >= LAG_EVERY_S:
            self._last_lag = now
            _export_lag(consumer, self.metrics)

    # ---- partition ownership --------------------------------------------------------------

    def assigned(self, consumer: KafkaConsumer, parts: list[TopicPartition]) -> None:
        inv = [p for p in parts if p.topic == self.config.topics.inventory]
        new = [p for p in inv if p.partition not in self._owned]
        if new:
            consumer.seek_to_beginning(*new)  # rebuild these clusters from the compacted topic
            self._need_committed += new
            self._catch_up(consumer, new, parts)
        lost = self._owned - {p.partition for p in inv}
        self._owned = {p.partition for p in inv}
        if lost and inv:
            n = len(consumer.partitions_for_topic(self.config.topics.inventory) or ()) or 1
            for cluster in list(self.engine.tables):
                if cluster_partition(cluster.encode(), range(n)) in lost:
                    self.engine.drop(cluster)

    def _catch_up(self, consumer: KafkaConsumer, inv: list[TopicPartition],
                  parts: list[TopicPartition]) -> None:  # fmt: skip
        """Hold metrics back until the inventory read so far has been absorbed.

        Runs in kafka-python's IO thread (no blocking calls): the end offsets to reach are
        fetched by the next :meth:`step`.
        """
        self._held = [p for p in parts if p.topic == self.config.topics.metrics]
        consumer.pause(*self._held)
        self._inventory_ends = {}
        self._need_ends = inv
        self._quiet_polls = 0
        self._held_since = time.monotonic()

    def _resume_when_caught_up(self, consumer: KafkaConsumer) -> None:
        """Resume metrics once the inventory is read to its end offsets AND polls bring no
        more of it (some brokers under-report end offsets), or after ``HOLD_MAX_S``."""
        if not self._held:
            return
        if time.monotonic() - self._held_since > HOLD_MAX_S:
            log.warning("inventory catch-up took over %.0f s; taking metrics anyway", HOLD_MAX_S)
            self._resume(consumer)
            return
        if self._quiet_polls < QUIET_POLLS:
            return
        if self._need_ends:
            try:
                self._inventory_ends = consumer.end_offsets(self._need_ends)
            except KafkaError:
                return
            self._need_ends = []
        assigned = consumer.assignment()
        for tp, end in self._inventory_ends.items():
            if tp in assigned and consumer.position(tp, timeout_ms=100) < end:
                return
        self._resume(consumer)

    def _resume(self, consumer: KafkaConsumer) -> None:
        assigned = consumer.assignment()
        consumer.resume(*[p for p in self._held if p in assigned])
        self._held, self._inventory_ends, self._need_ends = [], {}, []


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, daemon: EngineDaemon, consumer: KafkaConsumer) -> None:
        self.daemon = daemon
        self.consumer = consumer

    def on_partitions_revoked(self, revoked: Any) -> None:
        # keep the state: the same partitions usually come back (broker restart)
        self.daemon.rejoin.revoked()

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.daemon.rejoin.assigned(len(assigned))
        self.daemon.assigned(self.consumer, list(assigned))


def _only(b: MetricBatch, vms: set[str]) -> MetricBatch:
    """The part of a batch for the VMs ``vms``."""
    keep = [i for i, v in enumerate(b.vms) if v in vms]
    return msgspec.structs.replace(
        b, vms=[b.vms[i] for i in keep], cpu_pct=[b.cpu_pct[i] for i in keep],
        mem_mib=[b.mem_mib[i] for i in keep])  # fmt: skip


def _flush(sink: KafkaSink) -> bool:
    return sink.try_flush(FLUSH_TIMEOUT_S, "publish not confirmed yet, offsets stay uncommitted")


def _commit(consumer: KafkaConsumer) -> bool:
    try:
        consumer.commit()
    except KafkaError as e:
        log.warning("offset commit failed, will retry: %s", e)
        return False
    return True


def _export_lag(consumer: KafkaConsumer, metrics: EngineMetrics) -> None:
    parts = list(consumer.assignment())
    try:
        ends = consumer.end_offsets(parts)
    except KafkaError:
        return
    lag: dict[str, int] = {}
    for p in parts:
        pos = consumer.position(p, timeout_ms=100) if p in ends else None
        if pos is not None:
            lag[p.topic] = lag.get(p.topic, 0) + max(0, ends[p] - pos)
    for topic, n in lag.items():
        metrics.lag.labels(topic).set(n)


def _close(consumer: KafkaConsumer, sink: KafkaSink) -> None:
    for close in (lambda: sink.close(5), consumer.close):
        try:
            close()
        except KafkaError as e:
            log.warning("close: %s", e)
