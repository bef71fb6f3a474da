"""A live engine fed by the replay collector, scraped by a real Prometheus server.

Everything is real: the embedded Kafka-protocol broker, the engine daemon with its exporter,
the replay collector (with the demo actuator applying the recommendations) and Debian's
``prometheus`` binary (scripts/prometheus.sh installs it), on loopback ports. Order: broker
and engine, then Prometheus (first scrape of the idle engine), then the collector.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry, start_http_server

from collectors.replay import ReplayCollector
from collectors.replay.scenario import parse_scenario
from collectors.replay.traces import Trace
from tests.support import wait_for
from tests.support.prometheus import running_prometheus
from xdrs.bus import BusConfig, EmbeddedBroker, Topics
from xdrs.bus.kafka import KafkaSink, create_topics
from xdrs.demo import DemoProgress, apply_recommendations
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/dashboards/xdrs.json"
SCRAPE_S = 1
# Grafana's $__rate_interval is max(4 x scrape interval, step + scrape interval): 4 s at the
# test's 1 s scrapes, 1 m at the compose file's 15 s (both are evaluated)
RATE_INTERVALS = (f"{4 * SCRAPE_S}s", "1m")
CLUSTERS, HOSTS_PER_CLUSTER, VMS = ("c0", "c1"), 4, 60


@dataclass
class Pipeline:
    daemon: EngineDaemon
    collector: ReplayCollector
    progress: DemoProgress
    metrics_port: int
    started: float  # wall time (time.time()) before the collector's first sample


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str) -> dict[str, Any]:
        """The decoded answer of /api/v1/query (instant query, now)."""
        qs = urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{qs}", timeout=10) as r:
                return dict(orjson.loads(r.read()))
        except urllib.error.HTTPError as e:  # a bad query answers 400 with an error body
            return dict(orjson.loads(e.read()))

    def values(self, expr: str) -> list[float]:
        answer = self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        return [float(s["value"][1]) for s in answer["data"]["result"]]

    def label_values(self, label: str, match: str) -> list[str]:
        qs = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/label/{label}/values?{qs}") as r:
            answer = orjson.loads(r.read())
        assert answer["status"] == "success", answer
        return list(answer["data"])


def _scenario_and_trace() -> tuple[Any, Trace]:
    scenario = parse_scenario({
        "format": "xdrs-replay-scenario/1", "vms": VMS, "placement": "skewed",
        "clusters": [{"name": c, "hosts": [{"count": HOSTS_PER_CLUSTER, "vcpus": 8,
                                             "memory_mb": 65536}]} for c in CLUSTERS],
        "flavors": [{"vcpus": 2, "memory_mb": 4096}],
    })  # fmt: skip
    # steady 10-29 % CPU per VM: the skewed start is clearly unbalanced, so the engine acts
    cpu = np.repeat((10.0 + (np.arange(VMS) * 7) % 20)[:, None], 288, axis=1)
    return scenario, Trace("steady", tuple(f"vm{i}" for i in range(VMS)), cpu)


def _send_malformed(config: BusConfig) -> None:
    """One broken message, for the dead-letter panel."""
    raw = KafkaProducer(bootstrap_servers=config.bootstrap)
    raw.send(config.topics.metrics, key=b"c0\x1fhost\x1fc0-h00000", value=b'{"v": 1, "ty')
    raw.flush()
    raw.close()


@dataclass
class LiveEngine:
    """The engine daemon and its exporter, running on the broker; no collector yet."""

    config: BusConfig
    daemon: EngineDaemon
    stop: threading.Event
    metrics_port: int
    registry: CollectorRegistry


@pytest.fixture(scope="module")
def engine() -> Iterator[LiveEngine]:
    with EmbeddedBroker() as broker:
        config = BusConfig(broker.bootstrap, topics=Topics(f"dash{time.time_ns()}."),
                           fast_groups=True)  # fmt: skip
        create_topics(config)
        registry = CollectorRegistry()
        engine = Engine(EngineArgs(cooldown_s=1.0, pending_s=30.0))
        daemon = EngineDaemon(config, engine, registry=registry)
        server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
        stop = threading.Event()
        thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield LiveEngine(config, daemon, stop, server.server_address[1], registry)
        finally:
            stop.set()
            thread.join(20)
            server.shutdown()


@pytest.fixture(scope="module")
def pipeline(engine: LiveEngine, prometheus: Prometheus) -> Iterator[Pipeline]:
    """The replay collector and the demo actuator, started once Prometheus has scraped the
    idle engine, so that rates and the latency histogram see the work from its start."""
    assert wait_for(lambda: prometheus.values('up{job="xdrs-engine"}') == [1.0], 30)
    scenario, trace = _scenario_and_trace()
    sink = KafkaSink(engine.config)
    collector = ReplayCollector(scenario, trace, sink, speed=4.0)
    progress = DemoProgress()
    started = time.time()
    threads = [
        threading.Thread(target=collector.run, args=(engine.stop,), daemon=True),
        threading.Thread(target=apply_recommendations, args=(engine.config, collector, progress,
                                                engine.stop, engine.registry), daemon=True),
    ]  # fmt: skip
    for t in threads:
        t.start()
    try:
        # a dead letter, then (once Prometheus holds that series) a second, so that the
        # dead-letter rate sees an increase (a new series' first value is no increase)
        _send_malformed(engine.config)
        assert wait_for(lambda: bool(prometheus.values("xdrs_dead_letters_total")), 30)
        _send_malformed(engine.config)
        yield Pipeline(engine.daemon, collector, progress, engine.metrics_port, started)
    finally:
        engine.stop.set()
        for t in threads:
            t.join(20)
        sink.close()


def prometheus_config(target: str, daemon: str | None = None) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its engine job pointed at ``target`` (and, if
    ``daemon`` is given, its rebalancing daemon job at that; else that job left out)."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval=f"{SCRAPE_S}s", evaluation_interval=f"{SCRAPE_S}s")
    wanted = {"xdrs-engine": target} | ({"xdrs-daemon": daemon} if daemon else {})
    jobs = [j for j in config["scrape_configs"] if j["job_name"] in wanted]
    assert sorted(j["job_name"] for j in jobs) == sorted(wanted), (
        f"deploy/prometheus/prometheus.yml lost a job of {sorted(wanted)}"
    )
    for j in jobs:
        j["static_configs"] = [{"targets": [wanted[j["job_name"]]]}]
    config["scrape_configs"] = jobs
    return config


@contextlib.contextmanager
def run_prometheus(d: Path, config: dict[str, Any]) -> Iterator[Prometheus]:
    """Debian's Prometheus on a free loopback port with ``config``, its files in ``d``."""
    with running_prometheus(config, d) as url:
        yield Prometheus(url)


@pytest.fixture(scope="module")
def prometheus(
    engine: LiveEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    d = tmp_path_factory.mktemp("prometheus")
    with run_prometheus(d, prometheus_config(f"127.0.0.1:{engine.metrics_port}")) as prom:
        yield prom


# ---- the dashboard's queries, as Grafana sends them -------------------------------------


def dashboard() -> dict[str, Any]:
    """deploy/grafana/dashboards/xdrs.json, decoded."""
    return dict(orjson.loads(DASHBOARD.read_bytes()))


def queries(dash: dict[str, Any]) -> dict[str, list[str]]:
    """Panel title -> its PromQL expressions."""
    return {
        p["title"]: [t["expr"] for t in p["targets"]] for p in dash["panels"] if p.get("targets")
    }


def fill(expr: str, clusters: list[str], rate_interval: str = RATE_INTERVALS[0]) -> str:
    """Grafana's substitution for Prometheus: a multi-value variable becomes (a|b), each value
    regex-escaped with its backslashes doubled inside the PromQL string (real cluster ids hold
    dots and colons: ``127.0.0.1:8989/domain-c7``); built-ins get values."""
    values = "|".join(re.escape(c).replace("\\", "\\\\") for c in clusters)
    out = expr.replace("$__rate_interval", rate_interval).replace("$cluster", f"({values})")
    assert "$" not in out, out
    return out


def by(scraped: Prometheus, expr: str, label: str, interval: str = RATE_INTERVALS[0]
       ) -> dict[str, float]:  # fmt: skip
    """``expr`` (filled for the test's clusters) evaluated now: ``label``'s value -> value."""
    answer = scraped.query(fill(expr, list(CLUSTERS), interval))
    assert answer["status"] == "success", answer
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in answer["data"]["result"]}
