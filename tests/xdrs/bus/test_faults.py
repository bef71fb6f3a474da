"""Broker and engine faults, on real brokers of the tests' own (frozen, killed, restarted)."""

from __future__ import annotations

import signal
import time

import pytest
from prometheus_client import CollectorRegistry

from collectors.events import MetricBatch
from collectors.replay import ReplayCollector
from xdrs.bus import BusConfig, EmbeddedBroker, Topics
from xdrs.bus.kafka import KafkaSink, create_topics
from xdrs.demo import DemoProgress, apply_recommendations
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs

from .conftest import (
    BROKERS,
    busy_trace,
    committed_up_to,
    fast_groups,
    group,
    read_all,
    small_scenario,
    wait_for,
    written_ends,
)

pytestmark = pytest.mark.broker

FAST = {"request_timeout_ms": 5000}  # client timeouts short enough to exceed in a test


class RecordingEngine(Engine):
    """The real engine, also noting which (host, sample time) batches it absorbed."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.batches: set[tuple[str, float]] = set()

    def apply(self, e):
        out = super().apply(e)
        if isinstance(e, MetricBatch):
            self.batches.add((e.host, e.ts))
        return out


def _setup(broker, running, speed=20.0, engine_cls=RecordingEngine):
    config = BusConfig(broker.bootstrap, topics=Topics(f"f{time.time_ns()}."),
                       fast_groups=fast_groups(broker),
                       extra=FAST)  # fmt: skip
    create_topics(config)
    engine = engine_cls(EngineArgs(cooldown_s=0.5, pending_s=30.0))
    daemon = EngineDaemon(config, engine, group(config, "engine"), registry=CollectorRegistry())
    collector = ReplayCollector(small_scenario(), busy_trace(), KafkaSink(config), speed=speed,
                                inventory_every=10)  # fmt: skip
    return config, daemon, collector


def _moves(config) -> set[str]:
    """The keys of the moves of every recommendation on the topic."""
    return {m.key for r in read_all(config, config.topics.recommendations) for m in r.event.moves}


def _answers(config) -> tuple[set[str], list[str]]:
    """The moves recommended, then the keys of the results on the actions topic, read in
    that order: the engine may go on recommending (each move skipped, its metrics too old
    once the replay has ended), and a recommendation published after the actions were read
    would look unanswered (reproduced: 1 of 12 restart runs, 224 such recommendations)."""
    wanted = _moves(config)
    done = [r.event.key for r in read_all(config, config.topics.actions)
            if r.event.status != "started"]  # fmt: skip
    return wanted, done


def _answered(config) -> bool:
    """Whether the rebalancing daemon (no consumer group: it reads the topics from their
    start) recorded a result for every move of every recommendation on the topic."""
    wanted, done = _answers(config)
    return wanted <= set(done)


def _sent(collector, steps):
    return {(h.uuid, collector.t0 + s * 300.0) for s in steps for h in collector.hosts}


def _recommendations_settle(config, daemon) -> None:
    """Every recommendation the engine published is on the topic, once, and nothing else.
    The engine notes one when it hands it to the producer, which sends it shortly after: the
    last of a run may still be on its way when the test reads the topic, so wait for the two
    to agree."""

    def on_topic() -> list[str]:
        return [r.event.id for r in read_all(config, config.topics.recommendations)]

    def agree() -> bool:
        # the engine may still be publishing: what it had published before the topic was
        # read must be there, and nothing it had not published by the end of the read
        # (it keeps the last 1,000: the counts say the rest)
        n_before, before = daemon.n_published, {r.id for r in list(daemon.published)}
        ids = on_topic()
        return before <= set(ids) and n_before <= len(ids) <= daemon.n_published

    settled = wait_for(agree, 30, 0.5)
    ids = on_topic()
    assert len(ids) == len(set(ids)), "a recommendation is on the topic twice"
    assert settled, f"{len(ids)} on the topic, {len(daemon.published)} published"


@pytest.fixture(params=BROKERS)
def own_broker(request):
    """A broker this test may freeze: a Tansu of its own, or the session's Apache Kafka
    (thawed before the next test; its data and other tests' topics are untouched)."""
    if request.param == "kafka":
        yield request.getfixturevalue("apache_kafka")
        return
    b = EmbeddedBroker()
    b.start()
    yield b
    b.stop()


def test_frozen_broker_loses_no_sample_and_duplicates_no_recommendation(own_broker, running):
    config, daemon, collector = _setup(own_broker, running)
    progress = DemoProgress()
    running.start(daemon.run)
    running.start(apply_recommendations, config, collector, progress)
    feeder = running.start(lambda stop: collector.run(stop, steps=120))
    assert wait_for(lambda: collector.step_no >= 20, 30)
    own_broker.freeze()
    time.sleep(8.0)  # longer than request_timeout_ms (5 s) and the group session (4 s)
    own_broker.thaw()
    feeder.join(60)
    assert collector.step_no == 120
    everything = _sent(collector, range(120))
    ok = wait_for(lambda: everything <= daemon.engine.batches, 60)
    assert ok, f"{len(everything - daemon.engine.batches)} batches never reached the engine"
    assert daemon.engine.samples == collector.samples_sent  # each sample folded in once
    _recommendations_settle(config, daemon)
    keys = [
        r.event.key for r in read_all(config, config.topics.actions) if r.event.status != "started"
    ]  # the daemon's journal: one start, one result
    assert len(set(keys)) == len(keys)  # no move applied twice


def test_broker_restarted_empty_mid_stream(running):
    broker = EmbeddedBroker().start()
    port = broker.port
    try:
        config, daemon, collector = _setup(broker, running)
        running.start(daemon.run)
        feeder = running.start(lambda stop: collector.run(stop, steps=200))
        assert wait_for(lambda: collector.step_no >= 20, 30)
        assert wait_for(lambda: daemon.engine.samples > 0, 30)
        n_vms = {c: t.n_vms for c, t in daemon.engine.tables.items()}
        broker.stop()
        time.sleep(1.0)
        broker = EmbeddedBroker(port=port).start()  # same address, every topic gone
        create_topics(config)
        back = collector.step_no + 1  # steps published from here on went to the new broker
        feeder.join(90)
        assert collector.step_no == 200
        after = _sent(collector, range(back, 200))
        ok = wait_for(lambda: after <= daemon.engine.batches, 60)
        assert ok, f"{len(after - daemon.engine.batches)} of {len(after)} batches lost"
        # the engine kept its picture through the outage
        assert {c: t.n_vms for c, t in daemon.engine.tables.items()} == n_vms
    finally:
        broker.stop()


def test_engine_restart_rebuilds_state_and_reapplies_nothing(broker, running):
    config = BusConfig(
        broker.bootstrap, topics=Topics(f"r{time.time_ns()}."), fast_groups=fast_groups(broker)
    )
    create_topics(config)
    collector = ReplayCollector(small_scenario(), busy_trace(), KafkaSink(config), speed=0.0)
    progress = DemoProgress()
    first_rebalancer = running.start(apply_recommendations, config, collector, progress)
    first = EngineDaemon(config, Engine(EngineArgs(cooldown_s=0.2, pending_s=30.0)),
                         group(config, "engine"))  # fmt: skip
    stop_first = running.start(first.run)
    collector.publish_inventory()
    for s in range(3):
        collector.publish_step(s)
    assert wait_for(lambda: progress.applied > 0, 30)
    applied = {r.event.key for r in read_all(config, config.topics.actions)
               if r.event.status == "ok"}  # fmt: skip
    # kill the first engine (stop its loop without any goodbye), start a second one
    # (the rebalancing daemon too: two at once would both answer the moves in flight)
    running.stop.set()
    stop_first.join(20)
    first_rebalancer.join(20)
    assert not stop_first.is_alive() and not first_rebalancer.is_alive()
    running.stop.clear()
    second = EngineDaemon(config, Engine(EngineArgs(cooldown_s=0.2, pending_s=30.0)),
                          group(config, "engine"))  # fmt: skip
    running.start(second.run)
    running.start(apply_recommendations, config, collector, progress)
    where = {
        v: collector.hosts[h].uuid for v, h in zip(collector.vm_ids, collector.place, strict=True)
    }

    def rebuilt():
        tables = second.engine.tables
        return sum(t.n_vms for t in tables.values()) == len(collector.vm_ids) and all(
            t.vm_host[t.vm_row[v]] == where[v] for t in tables.values() for v in t.vm_ids
        )

    assert wait_for(rebuilt, 30)
    for s in range(3, 6):
        collector.publish_step(s)
    # positive signals, not a pause: the engine committed every metric (so the
    # recommendations they caused are on the topic), then the actuator committed those
    t = config.topics
    metrics_end = written_ends(config, t.metrics)
    engines = group(config, "engine")
    assert wait_for(lambda: committed_up_to(config, engines, t.metrics, metrics_end), 30)
    assert wait_for(lambda: _answered(config), 30)
    _, keys = _answers(config)
    assert len(keys) == len(set(keys)) and applied <= set(keys)


@pytest.mark.kafka
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_kafka_restarted_on_its_log_dir_loses_and_duplicates_nothing(apache_kafka, running, sig):
    """Apache Kafka keeps its data: stopped (controlled, or killed) and started again on its
    log dir in the middle of a stream, it still has every acknowledged sample, and nothing
    downstream (recommendations, actions) appears twice."""
    config, daemon, collector = _setup(apache_kafka, running)
    progress = DemoProgress()
    running.start(daemon.run)
    running.start(apply_recommendations, config, collector, progress)
    feeder = running.start(lambda stop: collector.run(stop, steps=120))
    # 90 s: an engine a group assignment gave nothing rejoins after 20 s, then 40 s more
    started = wait_for(lambda: collector.step_no >= 20 and daemon.n_published > 0, 90)
    assert started, (f"step {collector.step_no}, {daemon.n_published} published, "
                     f"{daemon.engine.samples} of {collector.samples_sent} samples absorbed, "
                     f"{daemon.rejoin.count} rejoins, {daemon.dead} dead")  # fmt: skip
    apache_kafka.stop(sig)
    down_at = collector.step_no
    apache_kafka.start()  # same ports, same log dir
    feeder.join(120)
    assert collector.step_no == 120 and down_at < 120
    everything = _sent(collector, range(120))
    ok = wait_for(lambda: everything <= daemon.engine.batches, 90)
    assert ok, f"{len(everything - daemon.engine.batches)} batches never reached the engine"
    assert daemon.engine.samples == collector.samples_sent  # each sample folded in once
    t = config.topics
    # read back from the broker: every sample sent is on the metrics topic
    on_topic = {(r.event.host, r.event.ts) for r in read_all(config, t.metrics)}
    assert everything <= on_topic, f"{len(everything - on_topic)} batches lost by the broker"
    _recommendations_settle(config, daemon)
    # results written while the broker was away wait in the producer, which reconnects with
    # a growing back-off (up to kafka-python's 30 s)
    assert wait_for(lambda: _answered(config), 120, 0.5)
    wanted, keys = _answers(config)
    assert keys and len(keys) == len(set(keys)), "an action is on the topic twice"
    assert wanted <= set(keys) <= _moves(config)  # and no result for a move never recommended
