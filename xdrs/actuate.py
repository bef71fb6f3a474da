"""The actuator daemon: recommendations topic in, platform moves, action results out.

One daemon per platform endpoint (e.g. one vCenter), in a consumer group of its own. At
start it reads the whole actions topic and keeps the idempotency keys already reported, so
a move is never applied twice, across redeliveries and restarts. It then applies the moves
of each recommendation of the clusters its mover owns, in wave order and one at a time,
publishes one :class:`ActionResult` per move with the move's key, and commits the consumed
offsets only after those results are confirmed by the broker. A recommendation older than
``max_age_s`` is not applied (its moves are reported failed, ``Expired``): the placement it
was planned on is long gone. The results of a recommendation are published once the
inventory topic shows the moved VMs on their new hosts (at most ``confirm_s`` later): the
engine re-plans as soon as every result is in, and must not do so on the old placement.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from collectors.events import (
    ActionResult,
    Move,
    Recommendation,
    VmEvent,
    inventory_key,
    move_result,
)
from collectors.platform import Mover
from xdrs.bus.config import BusConfig
from xdrs.bus.kafka import DeadLetters, KafkaSink, Record, make_consumer, records

__all__ = ["ActuatorDaemon", "InventoryWatch", "Mover", "applied_keys"]

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 10.0
MAX_APPLY_MS = 3_600_000  # the longest a recommendation may take to apply


def applied_keys(config: BusConfig, settle_ms: int = 500) -> set[str]:
    """Idempotency keys of every action result on the actions topic (read to its end)."""
    consumer = make_consumer(config, None)
    topic = config.topics.actions
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not parts:
            return set()
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        keys: set[str] = set()
        while any(consumer.position(p) < ends[p] for p in parts):
            for rec in records(consumer, timeout_ms=settle_ms):
                if isinstance(rec.event, ActionResult):
                    keys.add(rec.event.key)
        return keys
    finally:
        consumer.close()


class ActuatorDaemon:
    """Applies recommendations with ``mover`` until ``stop`` is set.

    ``results`` lists what this process reported, ``skipped`` counts moves whose key had
    been applied before (tests and monitoring).
    """

    def __init__(
        self,
        config: BusConfig,
        mover: Mover,
        group: str,
        max_age_s: float = 600.0,
        confirm_s: float = 30.0,
    ) -> None:
        self.config = config
        self.confirm_s = confirm_s
        self.inventory: InventoryWatch | None = None
        self.mover = mover
        self.group = group
        self.max_age_s = max_age_s
        self.applied: set[str] = set()
        self.results: list[ActionResult] = []
        self.skipped = 0
        self.dead = 0  # messages sent to the dead-letter topic
        self.ready = threading.Event()  # set once the applied keys are rebuilt and subscribed

    def run(self, stop: threading.Event) -> None:
        self.applied |= applied_keys(self.config)
        if self.confirm_s > 0:
            self.inventory = InventoryWatch(self.config)
        # moves are applied between polls: a long recommendation must not cost the group
        # membership (the embedded broker's short test timeouts are kept)
        longer = {} if self.config.fast_groups else {"max_poll_interval_ms": MAX_APPLY_MS}
        consumer = make_consumer(
            self.config, self.group, [self.config.topics.recommendations], **longer
        )
        sink = KafkaSink(self.config)
        dead = DeadLetters(sink, on_dead=self._count_dead)
        self.ready.set()
        try:
            while not stop.is_set():
                self.step(consumer, sink, stop, dead)
        finally:
            closers = [lambda: sink.close(5), consumer.close]
            if self.inventory is not None:
                closers.append(self.inventory.close)
            for close in closers:
                try:
                    close()
                except KafkaError as e:
                    log.warning("close: %s", e)

    def step(self, consumer: KafkaConsumer, sink: KafkaSink, stop: threading.Event,
             dead: DeadLetters) -> None:  # fmt: skip
        """One poll; apply what came; commit once the results are confirmed.

        A message that does not decode, or whose handling fails, is dead-lettered and the
        stream moves on past it.
        """
        try:
            batch = list(records(consumer, timeout_ms=200, max_records=50))
        except KafkaError as e:
            log.warning("poll failed, retrying: %s", e)
            stop.wait(0.5)
            return
        done = True
        for rec in batch:
            done = self._handle(rec, sink, stop, dead)
            if not done:
                break
        if batch and _confirmed(sink) and done:
            try:
                consumer.commit()
            except KafkaError as e:
                log.warning("offset commit failed (keys prevent a second apply): %s", e)

    def _handle(self, rec: Record, sink: KafkaSink, stop: threading.Event,
                dead: DeadLetters) -> bool:  # fmt: skip
        """Apply one record's recommendation if this mover owns it; ``False`` if stopped."""
        ev = rec.event
        if ev is None:
            dead.send(rec, rec.error, rec.category)
            return True
        if not isinstance(ev, Recommendation):
            return True
        try:
            return not self.mover.owns(ev.cluster) or self.apply(ev, sink, stop)
        except Exception as e:  # one bad recommendation must never stop the actuator
            log.exception("recommendation at %s[%d]@%d failed", rec.topic, rec.partition,
                          rec.offset)  # fmt: skip
            dead.send(rec, f"{type(e).__name__}: {str(e)[:300]}", "internal")
            return True

    def _count_dead(self, category: str) -> None:
        self.dead += 1

    def _move(self, rec: Recommendation, m: Move) -> ActionResult:
        """The mover's result; an unexpected exception is reported as a failed move."""
        try:
            return self.mover.move(rec, m)
        except Exception as e:  # a platform bug must not stop the other moves
            log.exception("move %s failed", m.key)
            return move_result(rec, m, f"internal: {type(e).__name__}: {str(e)[:300]}")

    def apply(self, rec: Recommendation, sink: KafkaSink, stop: threading.Event) -> bool:
        """Apply the moves of ``rec`` not applied before; ``False`` if stopped half-way.

        The results are published once the platform's collector has published the moved
        VMs on their new hosts (or after ``confirm_s``), so that the engine never reads a
        result while its inventory still shows the old placement (it would plan the same
        moves again).
        """
        expired = time.time() - rec.ts > self.max_age_s
        done: list[ActionResult] = []
        complete = True
        for m in sorted(rec.moves, key=lambda m: m.wave):
            key = m.key
            if key in self.applied:
                self.skipped += 1
                continue
            if stop.is_set():
                complete = False
                break
            result = _expired(rec, m) if expired else self._move(rec, m)
            self.applied.add(key)
            done.append(result)
            log.info(
                "%s %s: %s -> %s %s %s",
                key,
                result.vm,
                result.src,
                result.dst,
                result.status,
                result.error,
            )
        if self.inventory is not None:
            self.inventory.wait(
                {r.vm: r.dst for r in done if r.status == "ok"}, self.confirm_s, stop
            )
        for r in done:
            sink.publish("actions", inventory_key(rec.cluster, "action", r.key), r)
            self.results.append(r)
        return complete


class InventoryWatch:
    """Where the inventory topic puts each VM, read from the topic's end onwards."""

    def __init__(self, config: BusConfig) -> None:
        self.consumer = make_consumer(config, None)
        topic = config.topics.inventory
        parts = [
            TopicPartition(topic, p)
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(parts)
        self.consumer.seek_to_end(*parts)
        for p in parts:
            self.consumer.position(p)  # resolve now: later events are all seen
        self.host: dict[str, str] = {}

    def poll(self, timeout_ms: int = 100) -> None:
        for rec in records(self.consumer, timeout_ms=timeout_ms):
            if isinstance(rec.event, VmEvent):
                self.host[rec.event.uuid] = rec.event.host

    def wait(self, want: dict[str, str], timeout_s: float, stop: threading.Event) -> bool:
        """Until every VM of ``want`` is seen on its host; ``False`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.poll()
            except KafkaError as e:
                log.warning("inventory poll failed: %s", e)
            want = {vm: h for vm, h in want.items() if self.host.get(vm) != h}
            if not want:
                return True
            if time.monotonic() >= deadline or stop.is_set():
                log.warning(
                    "%d moved VM(s) not yet on the inventory topic, e.g. %s; reporting anyway",
                    len(want),
                    next(iter(want)),
                )
                return False

    def close(self) -> None:
        self.consumer.close()


def _expired(rec: Recommendation, m: Move) -> ActionResult:
    return move_result(rec, m, "Expired: recommendation too old to apply")


def _confirmed(sink: KafkaSink) -> bool:
    return sink.try_flush(FLUSH_TIMEOUT_S, "results not confirmed yet, offsets stay uncommitted")
