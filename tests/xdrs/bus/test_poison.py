"""Poison messages on the real broker: the engine and the rebalancing daemon dead-letter
them and go on.

Each test sends messages that once killed a consumer (arrays nested 1,000 deep in a string
field, bad UTF-8, numbers out of range, a tombstone key that is not UTF-8, an event whose
handling raises) between valid ones, then waits on positive signals: the next valid event
taken, the dead letters on their topic, the group's committed offsets at the partitions'
ends. A restarted process in the same group must not be stuck on them either.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import orjson
import pytest
from kafka import KafkaProducer, TopicPartition

from collectors.events import (
    ActionResult,
    Move,
    Recommendation,
    VmEvent,
    encode,
    inventory_key,
    move_result,
)
from collectors.replay import ReplayCollector
from xdrs.bus import BusConfig
from xdrs.bus.config import cluster_partition
from xdrs.bus.kafka import KafkaSink, make_consumer
from xdrs.daemon.service import RebalanceDaemon
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs

from .conftest import busy_trace, group, read_all, small_scenario, wait_for

DEEP = b"[" * 1000 + b"]" * 1000


def _with_raw(event: object, field: str, raw: bytes) -> bytes:
    """The JSON of ``event`` with ``field`` set to the raw bytes ``raw``."""
    doc = {**orjson.loads(encode(event)), field: "\x00"}  # type: ignore[arg-type]
    return orjson.dumps(doc).replace(b'"\\u0000"', raw)


class FragileEngine(Engine):
    """The real engine, except that absorbing a VM named ``explode`` raises (a stand-in for
    a bug that one event triggers)."""

    def apply(self, e):
        if isinstance(e, VmEvent) and e.name == "explode":
            raise RuntimeError("absorbing this event failed")
        return super().apply(e)


class Producer:
    """Raw bytes to one cluster's partition of a topic (what a broken producer would send)."""

    def __init__(self, config: BusConfig) -> None:
        self.config = config
        self.raw = KafkaProducer(bootstrap_servers=config.bootstrap, max_request_size=8 << 20)

    def send(self, topic: str, key: bytes, value: bytes | None, cluster: str = "c0") -> None:
        part = cluster_partition(cluster.encode(), range(self.config.partitions))
        self.raw.send(topic, key=key, value=value, partition=part)

    def close(self) -> None:
        self.raw.flush()
        self.raw.close()


@pytest.fixture
def producer(config: BusConfig) -> Iterator[Producer]:
    p = Producer(config)
    yield p
    p.close()


class Process:
    """One daemon in a thread, stopped and joined on :meth:`stop`."""

    def __init__(self, run) -> None:
        self.halt = threading.Event()
        self.thread = threading.Thread(target=run, args=(self.halt,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def committed_at_end(config: BusConfig, group: str, topics: list[str]) -> bool:
    """Whether ``group`` has committed every partition of ``topics`` up to its end."""
    consumer = make_consumer(config, group)  # not subscribed: it reads, it does not join
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in sorted(consumer.partitions_for_topic(t) or ())]  # fmt: skip
        ends = consumer.end_offsets(parts)
        return all((consumer.committed(p) or 0) >= ends[p] for p in parts)
    finally:
        consumer.close()


def _dead(config: BusConfig) -> list[dict]:
    return [orjson.loads(r.value) for r in read_all(config, config.topics.dead_letter, 0.5)]


def _engine_daemon(config: BusConfig) -> EngineDaemon:
    engine = FragileEngine(EngineArgs(cooldown_s=0.5, pending_s=60.0))
    return EngineDaemon(config, engine, group=group(config, "poison-engine"))


def _check_reasons(dead: list[dict], t) -> None:
    reasons = {(d["category"], d["reason"]) for d in dead}
    assert ("malformed", "malformed JSON: nested too deeply") in reasons
    assert any(cat == "malformed" and "UTF-8" in r for cat, r in reasons)
    assert ("schema", "vm.vcpus: number out of range") in reasons
    assert any(cat == "schema" and r.startswith("vm.memory_mb: ") for cat, r in reasons)
    assert any(cat == "tombstone" and "not UTF-8" in r for cat, r in reasons)
    assert ("internal", "RuntimeError: absorbing this event failed") in reasons
    assert any(cat == "version" and "version true" in r for cat, r in reasons)
    assert all(d["topic"] in (t.inventory, t.metrics) for d in dead)


def test_engine_dead_letters_poison_and_a_restart_is_not_stuck(config, producer):
    t, engines = config.topics, group(config, "poison-engine")
    c = ReplayCollector(small_scenario(), busy_trace(), KafkaSink(config), speed=0.0)
    c.publish_inventory()
    host = c.hosts[0]
    vm = VmEvent("c0", "poison-vm", host.uuid, 2, 4096)
    key = inventory_key("c0", "vm", "poison-vm").encode()
    any_event = orjson.loads(encode(c.vm_event(0)))
    inventory_poison = {
        "deep": _with_raw(vm, "host", DEEP),  # the 2 KB message of issue 10
        "utf8": encode(vm).replace(b'"poison-vm"', b'"poison-\xff\xfe"'),
        "huge": _with_raw(vm, "vcpus", b"1e999"),
        "bigint": _with_raw(vm, "memory_mb", b"9" * 400),
        "tombstone": None,  # sent with a key that is not UTF-8
        "absorb": encode(VmEvent("c0", "explode", host.uuid, 2, 4096, name="explode")),
    }
    for name, value in inventory_poison.items():
        k = b"c0\x1fvm\x1f\xff\xfe" if name == "tombstone" else key
        producer.send(t.inventory, k, value)
    metrics_key = inventory_key("c0", "host", host.uuid).encode()
    producer.send(t.metrics, metrics_key, _with_raw(vm, "cluster", DEEP))
    producer.send(t.metrics, metrics_key, orjson.dumps({**any_event, "v": True}))
    producer.raw.flush()
    marker = VmEvent("c0", "marker", host.uuid, 1, 1024)
    c.sink.publish("inventory", inventory_key("c0", "vm", "marker"), marker)
    c.publish_step(0)  # valid samples after the poison, on the same partitions

    first = _engine_daemon(config)
    proc = Process(first.run)
    n_poison = len(inventory_poison) + 2
    assert wait_for(lambda: first.engine.samples == c.samples_sent, 60), first.engine.samples
    assert "marker" in first.engine.tables["c0"].vm_row  # the next valid event was absorbed
    assert wait_for(lambda: first.dead == n_poison, 30), first.dead
    assert proc.thread.is_alive()
    assert wait_for(lambda: committed_at_end(config, engines, [t.inventory, t.metrics]))
    dead = _dead(config)
    assert len(dead) == n_poison
    _check_reasons(dead, t)
    proc.stop()

    # a new engine in the same group: it re-reads the compacted inventory, meets its poison
    # again but does not dead-letter it twice, and starts the metrics after the committed
    # offsets; poison new to the group after the restart is dead-lettered as before
    second = _engine_daemon(config)
    proc = Process(second.run)
    c.publish_step(1)
    assert wait_for(lambda: second.engine.samples == len(c.vm_ids), 60), second.engine.samples
    assert "marker" in second.engine.tables["c0"].vm_row
    assert wait_for(lambda: second.replayed_bad == len(inventory_poison), 30)
    producer.send(t.inventory, key, inventory_poison["huge"])
    producer.raw.flush()
    assert wait_for(lambda: second.dead == 1, 30), second.dead
    assert wait_for(lambda: committed_at_end(config, engines, [t.inventory, t.metrics]))
    assert len(_dead(config)) == n_poison + 1  # each bad message on the topic once
    assert second.replayed_bad == len(inventory_poison)
    assert proc.thread.is_alive()
    proc.stop()


class RecordingMover:
    """A platform that takes every move of cluster ``c0``; ``owns`` fails on cluster
    ``explode`` and ``move`` on VM ``boom`` (stand-ins for bugs one message triggers)."""

    def __init__(self) -> None:
        self.moved: list[str] = []

    def owns(self, cluster: str) -> bool:
        if cluster == "explode":
            raise RuntimeError("owns failed")
        return cluster == "c0"

    def move(self, rec: Recommendation, m: Move) -> ActionResult:
        if m.vm == "boom":
            raise RuntimeError("move failed")
        self.moved.append(m.key)
        return move_result(rec, m)


def _rec(rid: str, cluster: str = "c0", vm: str = "v1") -> Recommendation:
    move = Move(f"{rid}/0", vm, "h1", "h2", "imbalance")
    return Recommendation(rid, cluster, "imbalance", "balance", 1e12, 0.2, 0.1, [move])


def test_rebalancer_dead_letters_poison_and_a_restart_is_not_stuck(config, producer):
    topic = config.topics.recommendations
    key = inventory_key("c0", "recommendation", "r").encode()
    mover = RecordingMover()
    first = RebalanceDaemon(config, mover)
    proc = Process(first.run)
    assert first.ready.wait(30)
    poison = {
        "deep": _with_raw(_rec("r-deep"), "trigger", DEEP),
        "utf8": encode(_rec("r-utf8")).replace(b'"r-utf8"', b'"r-\xff"'),
        "reason": encode(_rec("r-why")).replace(b'"reason":"imbalance"', b'"reason":"whim"'),
        "huge": _with_raw(_rec("r-huge"), "ts", b"1e999"),
        "owns": encode(_rec("r-owns", cluster="explode")),
    }
    for value in poison.values():
        producer.send(topic, key, value)
    producer.send(topic, key, encode(_rec("r-ok")))
    producer.raw.flush()
    assert wait_for(lambda: first.dead == len(poison), 30), first.dead
    # the valid recommendation after the poison was taken: its move answered (skipped, as
    # this test publishes no inventory: the daemon does not know where v1 is)
    assert wait_for(lambda: "r-ok/0" in _answered_keys(config), 30)
    dead = _dead(config)
    assert sorted(d["category"] for d in dead) == sorted(
        ["malformed", "malformed", "schema", "schema", "internal"]
    )
    assert any(d["reason"] == "recommendation.moves[0].reason: invalid enum value 'whim'"
               for d in dead)  # fmt: skip
    assert any(d["reason"] == "RuntimeError: owns failed" for d in dead)
    assert proc.thread.is_alive()
    proc.stop()

    # a restart reads the same history (the rebalancing daemon has no consumer group): the
    # poison and the recommendation whose handling raised neither stop it nor are
    # dead-lettered twice, and nothing is answered twice
    second = RebalanceDaemon(config, mover)
    proc = Process(second.run)
    assert second.ready.wait(30) and proc.thread.is_alive()
    producer.send(topic, key, encode(_rec("r-next")))
    producer.raw.flush()
    assert wait_for(lambda: "r-next/0" in _answered_keys(config), 30)
    assert second.dead == 0 and len(_dead(config)) == len(poison)
    keys = [r.event.key for r in read_all(config, config.topics.actions)
            if r.event.status != "started"]  # fmt: skip
    assert len(keys) == len(set(keys)) == 2
    assert mover.moved == []  # v1 is not in any inventory: never moved blindly
    proc.stop()


def _answered_keys(config: BusConfig) -> set[str]:
    acts = read_all(config, config.topics.actions, 0.3)
    return {r.event.key for r in acts if r.event.status != "started"}
