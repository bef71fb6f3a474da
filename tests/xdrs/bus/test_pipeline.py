"""The event pipeline end to end on the real broker: collector -> Kafka -> engine -> Kafka."""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry, start_http_server

from collectors.events import (
    MAX_MESSAGE_BYTES,
    EventError,
    MetricBatch,
    Recommendation,
    VmEvent,
    encode,
    inventory_key,
)
from collectors.replay import ReplayCollector
from collectors.replay.scenario import parse_scenario
from xdrs.bus import BusConfig, Topics
from xdrs.bus.config import cluster_partition
from xdrs.bus.kafka import DeadLetters, KafkaSink, create_topics, make_consumer
from xdrs.engine import daemon as daemon_module
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs

from .conftest import busy_trace, group, read_all, small_scenario, wait_for

pytestmark = pytest.mark.broker


def _daemon(config, registry=None, name="engine"):
    engine = Engine(EngineArgs(threshold=3, cooldown_s=0.5, pending_s=60.0))
    daemon = EngineDaemon(config, engine, group=group(config, name), registry=registry)
    return daemon


def _collector(config, steps_per_s=0.0, **kw):
    return ReplayCollector(small_scenario(), busy_trace(), KafkaSink(config), speed=steps_per_s,
                           **kw)  # fmt: skip


def test_topics_are_created_once_and_keep_cluster_order(config):
    create_topics(config)  # a second time: no error
    c = _collector(config)
    c.publish_inventory()
    c.publish_step(0)
    recs = read_all(config, config.topics.metrics)
    assert len(recs) == len(c.hosts)
    parts = {}
    for r in recs:
        parts.setdefault(r.event.cluster, set()).add(r.partition)
    assert all(len(p) == 1 for p in parts.values())  # one cluster, one partition


def test_samples_reach_the_engine_and_recommendations_the_topic(config, running):
    registry = CollectorRegistry()
    daemon = _daemon(config, registry)
    running.start(daemon.run)
    c = _collector(config)
    c.publish_inventory()
    for step in range(5):
        c.publish_step(step)
    assert wait_for(lambda: daemon.engine.samples == c.samples_sent, 30)
    assert wait_for(lambda: len(daemon.published) >= 2, 30)  # both clusters are unbalanced

    def recs_on_topic():
        return [r.event for r in read_all(config, config.topics.recommendations)]

    # published = handed to the producer; the last may still be on its way to the broker
    assert wait_for(lambda: {r.id for r in recs_on_topic()} == {r.id for r in daemon.published},
                    30, 0.5)  # fmt: skip
    recs = recs_on_topic()
    for rec in recs:
        assert isinstance(rec, Recommendation) and rec.moves
        hosts = {h.uuid for h in c.hosts if h.cluster == rec.cluster}
        assert all(m.src in hosts and m.dst in hosts for m in rec.moves)
        assert rec.objective_after < rec.objective_before
    # the exporter, scraped over HTTP like Prometheus does
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        assert wait_for(lambda: bool(daemon.views), 5)
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/metrics")
        text = body.read().decode()
    finally:
        server.shutdown()
    assert f"xdrs_samples_absorbed_total {float(c.samples_sent)}" in text
    assert 'xdrs_host_load_ratio{cluster="c0",host="c0-h00000",resource="cpu"}' in text
    assert 'xdrs_cluster_imbalance{cluster="c1",kind="target"} 0.08' in text
    assert "xdrs_optimizer_duration_seconds_count" in text
    # per-cluster series exist at zero before their first increment (rate() needs them)
    assert 'xdrs_recommended_moves_total{cluster="c0",reason="make_room"} 0.0' in text


def test_bad_messages_are_dead_lettered_and_nothing_else_is_lost(broker, config, running):
    registry = CollectorRegistry()
    daemon = _daemon(config, registry)
    daemon.park_s = 1.0  # samples of unknown VMs wait this long for their inventory
    running.start(daemon.run)
    c = _collector(config)
    c.publish_inventory()
    c.publish_step(0)
    raw = KafkaProducer(bootstrap_servers=config.bootstrap, max_request_size=8 << 20)
    good = orjson.loads(encode(MetricBatch("c0", "c0-h00000", 1.0, 0, [], [], [])))
    bad = {
        "malformed": b'{"v": 1, "type": "metr',
        "version": orjson.dumps({**good, "v": 99}),
        "schema": orjson.dumps({**good, "cpu_pct": "lots"}),
        "oversized": b'{"v":1,' + b" " * MAX_MESSAGE_BYTES + b"}",
        "unknown_vm": encode(
            MetricBatch("c0", "c0-h00000", c.t0 + 100, 0, ["ghost"], [5.0], [1.0])
        ),
    }
    key = b"c0\x1fhost\x1fc0-h00000"
    part = cluster_partition(key, range(config.partitions))  # where the collector writes c0
    sent = [raw.send(config.topics.metrics, key=key, value=value, partition=part)
            for value in bad.values()]  # fmt: skip
    for future in sent:
        future.get(30)  # acknowledged: each bad message is on the topic
    raw.close()
    c.publish_step(1)  # good samples after the bad ones
    assert wait_for(lambda: daemon.dead == len(bad), 30), daemon.dead
    ok = wait_for(lambda: daemon.engine.samples == c.samples_sent, 30)
    assert ok, (daemon.engine.samples, c.samples_sent)

    def dead_on_topic():
        return [orjson.loads(r.value) for r in read_all(config, config.topics.dead_letter)]

    # counted when handed to the producer: the last may still be on its way to the broker
    assert wait_for(lambda: len(dead_on_topic()) >= len(bad), 30, 0.5)
    dead = dead_on_topic()
    assert sorted(d["category"] for d in dead) == sorted(bad)
    by_cat = {d["category"]: d for d in dead}
    assert "unsupported schema version 99" in by_cat["version"]["reason"]
    assert "ghost" in by_cat["unknown_vm"]["reason"]
    assert by_cat["malformed"]["topic"] == config.topics.metrics
    assert len(by_cat["oversized"]["payload"]) <= 64 << 10  # payload kept, truncated
    counted = {
        s.labels["reason"]: s.value
        for m in registry.collect()
        if m.name == "xdrs_dead_letters"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert {k: v for k, v in counted.items() if v} == dict.fromkeys(bad, 1.0)
    assert counted["internal"] == 0.0  # the other categories exist from the start, at zero


def test_large_events_pass_and_oversized_ones_are_refused_at_the_source(config):
    """Apache Kafka refuses messages over 1 MiB by default: the topics and the producer are
    set up for every message xdrs accepts (up to MAX_MESSAGE_BYTES), and one over that is
    refused by the sink with a clear error instead of being resent forever."""
    n = 60_000  # about 2 MiB of JSON: one host's batch of 60,000 VMs
    big = MetricBatch("c0", "c0-h0", 1.0, 0, [f"vm{i}" for i in range(n)], [1.5] * n, [2.0] * n)
    assert 1 << 20 < len(encode(big)) < MAX_MESSAGE_BYTES
    sink = KafkaSink(config)
    try:
        sink.publish("metrics", "c0\x1fhost\x1fc0-h0", big)
        sink.flush(30)
        with pytest.raises(EventError, match=f"exceeds {MAX_MESSAGE_BYTES}") as e:
            sink.publish_raw(config.topics.metrics, b"k", b" " * (MAX_MESSAGE_BYTES + 1))
        assert e.value.category == "oversized"
    finally:
        sink.close()
    got = [r.event for r in read_all(config, config.topics.metrics)]
    assert len(got) == 1 and isinstance(got[0], MetricBatch) and len(got[0].vms) == n


def test_the_producer_is_idempotent(config):
    """A send the producer retries (the broker answered too late) is written once: the
    broker gave the producer an id, so it de-duplicates by sequence number."""
    sink = KafkaSink(config)
    try:
        sink.publish("metrics", "c0\x1fhost\x1fh", MetricBatch("c0", "h", 1.0, 0, [], [], []))
        sink.flush(30)
        pid = sink._producer._transaction_manager.producer_id_and_epoch
        assert pid.producer_id >= 0
    finally:
        sink.close()


def test_producer_options_pass_through_and_gzip_round_trips(broker):
    from xdrs.bus import BusConfig, Topics

    cfg = BusConfig(broker.bootstrap, topics=Topics(f"gz{time.time_ns()}."),
                    extra={"compression_type": "gzip", "linger_ms": 20})  # fmt: skip
    create_topics(cfg)
    c = ReplayCollector(small_scenario(), busy_trace(), KafkaSink(cfg), speed=0.0)
    c.publish_inventory()
    c.publish_step(0)
    got = read_all(cfg, cfg.topics.metrics)  # a consumer built from the same config
    assert sum(len(r.event.vms) for r in got) == len(c.vm_ids)


class FailingOn(Engine):
    """The real engine, made to fail on one cluster (fault injection)."""

    def recommend(self, name, trigger, now, wall=None):
        if name == "c0":
            raise RuntimeError("injected optimiser fault")
        return super().recommend(name, trigger, now, wall)


def test_an_optimiser_fault_on_one_cluster_spares_the_others(config, running):
    daemon = EngineDaemon(config, FailingOn(EngineArgs(cooldown_s=0.5)), group(config, "engine"))
    running.start(daemon.run)
    c = _collector(config)
    c.publish_inventory()
    for step in range(3):
        c.publish_step(step)
    assert wait_for(lambda: daemon.failures > 0 and daemon.n_published > 0, 30)
    assert {r.cluster for r in daemon.published} == {"c1"}
    assert wait_for(lambda: daemon.engine.samples == c.samples_sent, 10)


def test_an_engine_started_after_a_backlog_takes_all_of_it(config, running):
    """Metrics wait until the inventory is caught up: no sample of a backlog is dead-lettered
    as belonging to a VM the engine has not read yet."""
    big = parse_scenario({
        "format": "xdrs-replay-scenario/1", "vms": 3000, "placement": "spread",
        "clusters": [{"name": f"k{i}", "hosts": [{"count": 25, "vcpus": 32,
                                                  "memory_mb": 262144}]} for i in range(4)],
        "flavors": [{"vcpus": 2, "memory_mb": 4096}],
    })  # fmt: skip
    c = ReplayCollector(big, busy_trace(3000), KafkaSink(config), speed=0.0)
    c.publish_inventory()
    for step in range(5):
        c.publish_step(step)
    daemon = _daemon(config)
    running.start(daemon.run)
    assert wait_for(lambda: daemon.engine.samples == c.samples_sent, 30), daemon.engine.samples
    assert daemon.dead == 0


def test_samples_that_overtake_their_vms_inventory_wait_for_it(config, running):
    """Inventory and metrics are different topics: a new VM's first samples may be read
    before its description. They are parked, then taken when it arrives."""
    daemon = _daemon(config)
    running.start(daemon.run)
    c = _collector(config)
    c.publish_inventory()
    c.publish_step(0)
    assert wait_for(lambda: daemon.engine.samples == c.samples_sent, 30)
    host = c.hosts[0]
    sink = KafkaSink(config)
    sink.publish("metrics", inventory_key(host.cluster, "host", host.uuid), MetricBatch(
        host.cluster, host.uuid, c.t0 + 150, 0, ["newcomer"], [50.0], [512.0]))  # fmt: skip
    consumed = daemon.consumed
    sink.flush()
    assert wait_for(lambda: daemon.consumed > consumed, 15)  # read: parked, the VM is unknown
    assert daemon.engine.samples == c.samples_sent and daemon.dead == 0
    sink.publish("inventory", inventory_key(host.cluster, "vm", "newcomer"),
                 VmEvent(host.cluster, "newcomer", host.uuid, 2, 1024))  # fmt: skip
    sink.flush()
    assert wait_for(lambda: daemon.engine.samples == c.samples_sent + 1, 15)
    t = daemon.engine.tables[host.cluster]
    assert t.cpu[t.vm_row["newcomer"]] == 1.0  # 50 % of 2 vCPUs
    assert daemon.dead == 0


def _lag(registry, topic):
    return registry.get_sample_value("xdrs_consumer_lag_messages", {"topic": topic})


@pytest.mark.kafka
def test_consumer_lag_counts_the_messages_not_yet_consumed(apache_kafka, monkeypatch):
    """``xdrs_consumer_lag_messages`` is the number of messages behind, not of batches: with
    the metrics partitions paused, N batches published read as a lag of exactly N, and 0
    once they are consumed. (Tansu's end offsets count record batches: it reads low there.)"""
    monkeypatch.setattr(daemon_module, "LAG_EVERY_S", 0.0)  # export the lag at every step
    config = BusConfig(apache_kafka.bootstrap, topics=Topics(f"lag{time.time_ns()}."))
    create_topics(config)
    registry = CollectorRegistry()
    daemon = _daemon(config, registry, name="lag")
    t = config.topics
    consumer = make_consumer(config, daemon.group, [t.inventory, t.metrics, t.actions])
    sink = KafkaSink(config)
    dead = DeadLetters(sink)
    c = _collector(config)

    def step() -> None:  # one loop of the daemon, driven from here
        daemon.step(consumer, sink, dead)

    try:
        c.publish_inventory()  # the inventory first: this loop has no catch-up hold
        n_vms = len(c.vm_ids)
        assert wait_for(lambda: step() or sum(x.n_vms for x in daemon.engine.tables.values())
                        == n_vms, 60)  # fmt: skip
        c.publish_step(0)
        assert wait_for(lambda: step() or daemon.engine.samples == c.samples_sent, 30)
        step()
        assert _lag(registry, t.metrics) == 0.0
        paused = [p for p in consumer.assignment() if p.topic == t.metrics]
        consumer.pause(*paused)
        for s in range(1, 6):
            c.publish_step(s)  # one message per host and step, linger_ms batches them
        behind = 5 * len(c.hosts)
        assert wait_for(lambda: step() or _lag(registry, t.metrics) == behind, 30), (
            _lag(registry, t.metrics), behind)  # fmt: skip
        consumer.resume(*paused)
        assert wait_for(lambda: step() or _lag(registry, t.metrics) == 0.0, 30)
        assert daemon.engine.samples == c.samples_sent
    finally:
        sink.close(5)
        consumer.close()
