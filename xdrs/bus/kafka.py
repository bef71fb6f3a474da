"""kafka-python producers and consumers for xdrs events.

The producer keeps per-key order (one request in flight per connection while retrying) and
retries until the delivery timeout, buffering while the broker is away. Consumers never
auto-commit: the engine commits after its state has absorbed what it read.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from collectors.events import MAX_MESSAGE_BYTES, DeadLetter, Event, EventError, decode, encode
from xdrs.bus.config import BusConfig, cluster_partition

__all__ = ["DeadLetters", "KafkaSink", "Record", "create_topics", "make_consumer", "records"]

log = logging.getLogger(__name__)
DEAD_PAYLOAD_BYTES = 64 << 10
# what the topics and the producer let through: every message xdrs accepts (up to
# MAX_MESSAGE_BYTES) plus room for the record batch around it. Apache Kafka's default is
# 1 MiB, so without this a valid 2 MiB event would be refused by the broker and resent forever.
BUS_MESSAGE_BYTES = MAX_MESSAGE_BYTES + (64 << 10)


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed message, decoded (``event``) or not (``error`` says why)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    event: Event | None
    error: str = ""
    category: str = ""


def check_reachable(config: BusConfig, timeout_s: float = 5.0) -> None:
    """Raise :class:`kafka.errors.KafkaConnectionError` unless a bootstrap server accepts TCP.

    kafka-python waits up to half a minute before giving up on an address nothing listens
    on; this answers a wrong address or a stopped broker in a few seconds.
    """
    errors = []
    for server in config.bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout_s).close()
            return
        except OSError as e:
            errors.append(f"{server}: {e.strerror or e}")
    raise KafkaConnectionError("no bootstrap server reachable (" + "; ".join(errors) + ")")


def create_topics(config: BusConfig, timeout_s: float = 10.0) -> None:
    """Create the xdrs topics (inventory compacted, each taking messages up to
    :data:`BUS_MESSAGE_BYTES`); existing topics are left as they are."""
    check_reachable(config)
    t = config.topics
    size = {"max.message.bytes": str(BUS_MESSAGE_BYTES)}
    compacted = {"cleanup.policy": "compact", **size}
    specs = [
        NewTopic(t.inventory, config.partitions, 1, topic_configs=compacted),
        NewTopic(t.metrics, config.partitions, 1, topic_configs=size),
        NewTopic(t.recommendations, config.partitions, 1, topic_configs=size),
        NewTopic(t.actions, config.partitions, 1, topic_configs=size),
        NewTopic(t.dead_letter, 1, 1, topic_configs=size),
    ]
    admin = KafkaAdminClient(**{"request_timeout_ms": int(timeout_s * 1000), **config.common()})
    try:
        for spec in specs:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([spec])
        _wait_for_leaders(admin, [s.name for s in specs], timeout_s)
    finally:
        admin.close()


def _wait_for_leaders(admin: KafkaAdminClient, names: list[str], timeout_s: float) -> None:
    """Return once every partition of ``names`` has a leader in the broker's metadata.

    Apache Kafka answers CreateTopics before its metadata shows the new topics: a consumer
    group formed in that gap is given no partition (its assignor has no metadata for the
    topics) and would sit idle until the next metadata refresh, minutes later.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics(names)
        ready = len(described) == len(names) and all(
            t["error_code"] == 0 and t["partitions"]
            and all(p["leader_id"] >= 0 for p in t["partitions"])
            for t in described
        )  # fmt: skip
        if ready or time.monotonic() > deadline:
            if not ready:
                log.warning("topics without a leader after %.0f s: %s", timeout_s, names)
            return
        time.sleep(0.1)


def make_producer(config: BusConfig, **overrides: Any) -> KafkaProducer:
    settings: dict[str, Any] = {
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 256 << 10,
        "max_in_flight_requests_per_connection": 1,  # order per key survives retries
        # idempotent (kafka-python >= 3 with these settings): a retried send is written once
        "enable_idempotence": True,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 300_000,
        "retry_backoff_ms": 200,
        "max_request_size": BUS_MESSAGE_BYTES,
        **config.common(producer=True),
        **overrides,
    }
    return KafkaProducer(**settings)


Pending = tuple[str, bytes, bytes | None, int]  # topic, key, value, partition


class KafkaSink:
    """A :class:`collectors.events.Sink` that produces to the xdrs topics.

    ``kind`` is a topic attribute of :class:`xdrs.bus.config.Topics` (``"inventory"``,
    ``"metrics"``, ...); the partition is the key's cluster's. The producer retries on its
    own while the broker is away; a message it finally gives up on (a fatal producer error,
    e.g. after the broker restarted empty) is resent from a new producer at the next
    :meth:`flush`, so nothing accepted by :meth:`publish` is dropped silently.
    """

    def __init__(self, config: BusConfig, **overrides: Any) -> None:
        self.config = config
        self._overrides = overrides
        self._producer = make_producer(config, **overrides)
        self.sent = 0
        self.resent = 0
        self._failed: list[Pending] = []
        self._partitions: dict[str, list[int]] = {}

    def publish(self, kind: str, key: str, event: Event | None) -> None:
        topic = getattr(self.config.topics, kind)
        self.publish_raw(topic, key.encode(), None if event is None else encode(event))

    def publish_raw(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Send one message; one over :data:`MAX_MESSAGE_BYTES` is refused here with an
        :class:`EventError` (every consumer would dead-letter it) rather than sent."""
        if value is not None and len(value) > MAX_MESSAGE_BYTES:
            raise EventError(f"message of {len(value)} bytes for {topic} exceeds "
                             f"{MAX_MESSAGE_BYTES}", "oversized")  # fmt: skip
        parts = self._partitions.get(topic)
        if parts is None:
            parts = self._partitions[topic] = sorted(self._producer.partitions_for(topic))
        self._send((topic, key, value, cluster_partition(key, parts)))
        self.sent += 1

    def _send(self, item: Pending) -> None:
        topic, key, value, part = item
        try:
            future = self._producer.send(topic, key=key, value=value, partition=part)
        except KafkaError as e:
            log.warning("producer refused a send (%s); it will be resent", e)
            self._failed.append(item)
            return
        future.add_errback(self._on_error, item)

    def _on_error(self, item: Pending, exc: BaseException) -> None:
        self._failed.append(item)  # list.append is atomic: safe from the IO thread

    def flush(self, timeout: float | None = None) -> None:
        """Wait for delivery; resend what failed from a fresh producer."""
        try:
            self._producer.flush(timeout)
        finally:
            if self._failed:
                self._recover()

    def try_flush(self, timeout: float, what: str) -> bool:
        """:meth:`flush`; False (logged with ``what``) when delivery is not confirmed yet."""
        try:
            self.flush(timeout)
        except KafkaError as e:
            log.warning("%s: %s", what, e)
            return False
        return True

    def _recover(self) -> None:
        items, self._failed = self._failed, []
        log.warning("resending %d message(s) from a new producer", len(items))
        old, self._producer = self._producer, make_producer(self.config, **self._overrides)
        with contextlib.suppress(KafkaError):
            old.close(0)
        self.resent += len(items)
        for item in items:
            self._send(item)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.close(timeout)


def make_consumer(
    config: BusConfig, group: str | None, topics: Iterable[str] = (), **overrides: Any
) -> KafkaConsumer:
    """A consumer with manual commits; subscribed to ``topics`` when a group is given."""
    settings: dict[str, Any] = {
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": 8 << 20,
        "fetch_max_bytes": 32 << 20,
        # A fetch that finds nothing waits at most this long. kafka-python's 500 ms default
        # made the embedded broker (Tansu) answer a recommendation to the daemon after
        # ~160 ms at the median; 100 ms gave ~25 ms (bench/RESULTS-daemon.md), for at most
        # 10 empty fetches a second per idle consumer.
        "fetch_max_wait_ms": 100,
        **config.group_timeouts(),
        **config.common(),
        **overrides,
    }
    consumer = KafkaConsumer(**settings)
    if group is not None and topics:
        # The group's leader assigns from its own metadata: one that lacked the topics
        # ("No partition metadata for topic ...") gave every partition to no one (seen on
        # Apache Kafka right after the topics were made). Read it for them first.
        names = list(topics)
        for topic in names:
            consumer.partitions_for_topic(topic)
        consumer.subscribe(names)
    return consumer


def records(
    consumer: KafkaConsumer, timeout_ms: int = 200, max_records: int = 5000
) -> Iterator[Record]:
    """Poll once and decode; an undecodable message yields a record with ``error`` set.

    Nothing a message holds makes this raise: :func:`~collectors.events.decode` raises only
    :class:`EventError`, and anything else it might raise is reported as ``internal``.
    """
    batches = consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
    for tp, msgs in batches.items():
        for m in msgs:
            yield _record(tp.topic, tp.partition, m.offset, m.key, m.value)


def _record(topic: str, partition: int, offset: int, key: bytes | None,
            value: bytes | None) -> Record:  # fmt: skip
    try:
        return Record(topic, partition, offset, key, value, decode(key, value))
    except EventError as e:
        return Record(topic, partition, offset, key, value, None, str(e), e.category)
    except Exception as e:  # a bug in decode must cost one message, never the consumer
        log.exception("decoding %s[%d]@%d failed", topic, partition, offset)
        reason = f"decode failed: {type(e).__name__}: {str(e)[:200]}"
        return Record(topic, partition, offset, key, value, None, reason, "internal")


class DeadLetters:
    """Publishes a failed message, with the reason, to the dead-letter topic."""

    def __init__(self, sink: KafkaSink, on_dead: Callable[[str], None] | None = None) -> None:
        self.topic = sink.config.topics.dead_letter
        self._sink = sink
        self._on_dead = on_dead

    def send(self, rec: Record, reason: str, category: str) -> None:
        payload = (rec.value or b"")[:DEAD_PAYLOAD_BYTES].decode("utf-8", "replace")
        doc = DeadLetter(topic=rec.topic, partition=rec.partition, offset=rec.offset,
                         key=(rec.key or b"")[:1024].decode("utf-8", "replace"),
                         reason=reason[:1024], category=category,  # type: ignore[arg-type]
                         payload=payload, ts=time.time())  # fmt: skip
        self._sink.publish_raw(self.topic, rec.key or b"", encode(doc))
        if self._on_dead is not None:
            self._on_dead(category)


def end_offsets(consumer: KafkaConsumer, parts: list[TopicPartition]) -> dict[TopicPartition, int]:
    try:
        ends: dict[TopicPartition, int] = consumer.end_offsets(parts)
        return ends
    except KafkaError:
        return {}
