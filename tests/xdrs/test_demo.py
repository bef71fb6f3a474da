"""`xdrs demo`, `xdrs engine`, `xdrs replay` from the command line (real embedded broker)."""

from __future__ import annotations

import re

import pytest

from xdrs.bus.broker import free_port
from xdrs.cli import main


@pytest.mark.broker  # the embedded broker
def test_demo_balances_the_replayed_clusters(capsys):
    assert main(["demo", "--duration", "10", "--speed", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "0 dead-lettered" in out
    applied = int(re.search(r"moves applied (\d+), refused 0", out).group(1))
    assert applied > 0
    sent, absorbed = re.search(r"([\d,]+) samples sent, ([\d,]+) absorbed", out).groups()
    assert sent == absorbed
    rows = re.findall(r"^(replay-\w)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.M)
    assert len(rows) == 2
    for _, first, now, _target in rows:
        assert float(now) < float(first)


@pytest.mark.broker  # the embedded broker
def test_demo_dry_run_says_what_it_would_do_and_moves_nothing(capsys):
    assert main(["demo", "--duration", "6", "--speed", "8", "--quiet", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^dry-run replay-\w-\d+-\d+: cluster replay-\w \(full\), \d+ moves", out, re.M
    )
    assert re.search(r"^  wave 0 \S+: \S+ \S+ -> \S+ .*: would run", out, re.M)
    assert re.search(r"moves applied 0, refused 0", out)


@pytest.mark.parametrize(("argv", "message"), [
    (["demo", "--bootstrap-servers", "nohost"], "expected host:port"),
    (["demo", "--bootstrap-servers", "127.0.0.1:99999"], "port 1..65535"),
    (["demo", "--trace", "planetlab:19990101", "--trace-dir", "/nonexistent"],
     "is not a directory"),
    (["demo", "--trace", "gwa:1"], "expected planetlab:<day>"),
    (["demo", "--scenario", "/nonexistent.json"], "/nonexistent.json"),
    (["demo", "--duration", "0"], "--duration"),
    (["demo", "--speed", "-1"], "--speed"),
    (["demo", "--per-host", "0"], "--per-host"),
    (["demo", "--api-token-file", "/nonexistent"], "--api-token-file: needs --api"),
    (["engine", "--kafka-option", "sasl_plain_password=x"], "XDRS_KAFKA_SASL_PASSWORD"),
    (["engine", "--kafka-option", "colour=blue"], "kafka option 'colour'"),
    (["engine", "--threshold", "9"], "--threshold"),
], ids=["host", "port", "trace-dir", "trace-kind", "scenario", "duration", "speed", "per-host",
        "token", "secret", "option", "threshold"])  # fmt: skip
def test_bad_configuration_is_one_clear_error(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xdrs: error: ") and message in err
    assert "Traceback" not in err


def test_unreachable_broker_is_one_clear_error(capsys):
    port = free_port()  # nothing listens there
    assert main(["demo", "--bootstrap-servers", f"127.0.0.1:{port}", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert f"Kafka at 127.0.0.1:{port}" in err and "Traceback" not in err


def test_bus_options_reach_the_client_config():
    from xdrs.cli import build_parser
    from xdrs.cli.options import bus_config

    argv = ["engine", "--client-id", "engine-7", "--topic-prefix", "prod."]
    args = build_parser().parse_args([*argv, "--kafka-option", "request_timeout_ms=9000"])
    cfg = bus_config(args, "xdrs-engine", "k1:9092,k2:9092")
    assert cfg.client_id == "engine-7" and cfg.topics.metrics == "prod.metrics"
    assert cfg.common()["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert cfg.common()["request_timeout_ms"] == 9000
    default = bus_config(build_parser().parse_args(["replay"]), "xdrs-replay", "k:1")
    assert default.client_id == "xdrs-replay"


@pytest.mark.broker
def test_collect_replay_from_the_platform_registry_publishes_every_step():
    import time

    from kafka import TopicPartition

    from collectors.events import MetricBatch
    from xdrs.bus import BusConfig, EmbeddedBroker, Topics
    from xdrs.bus.kafka import make_consumer, records

    with EmbeddedBroker() as broker:
        argv = ["collect", "replay", "--bootstrap-servers", broker.bootstrap, "--steps", "3",
                "--speed", "0", "--topic-prefix", "reg.", "--partitions", "1"]  # fmt: skip
        assert main(argv) == 0
        config = BusConfig(broker.bootstrap, topics=Topics("reg."), fast_groups=True)
        consumer = make_consumer(config, None)
        part = TopicPartition(config.topics.metrics, 0)
        consumer.assign([part])
        consumer.seek_to_beginning(part)
        end = consumer.end_offsets([part])[part]
        batches, deadline = [], time.monotonic() + 30
        while consumer.position(part) < end and time.monotonic() < deadline:
            batches += [r.event for r in records(consumer) if isinstance(r.event, MetricBatch)]
        consumer.close()
    hosts = {b.host for b in batches}
    assert len(hosts) == 48  # the default scenario's hosts
    assert len(batches) == 3 * len(hosts)  # one batch per host per step
