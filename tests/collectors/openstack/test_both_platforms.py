"""Both platforms in one engine: the vCenter simulator and the Nova test cloud publish to
one bus, one engine plans for both, each platform's rebalancing daemon applies only its own
clusters' moves, no move crosses platforms, and both platforms' clusters show side by side
in the engine's exporter and in the Grafana dashboard's queries, evaluated on a real
Prometheus scraping the engine. All real: vcsim, Nova, Prometheus, our load exporter, Tansu.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, start_http_server

from collectors.events import ActionResult
from collectors.openstack import NOVA_PATIENCE, NovaMover, cluster_id
from collectors.openstack.collector import CollectorOptions as OsOptions
from collectors.openstack.collector import OpenStackCollector
from collectors.platform import Mover
from collectors.retry import Patience
from collectors.vsphere import CollectorOptions, Connection, ConnectionSpec, VSphereCollector
from collectors.vsphere.events import BridgeOptions, EventBridge, scope_of
from collectors.vsphere.mover import VSphereMover
from tests.collectors.openstack.conftest import (
    CLOUD,
    Cloud,
    Load,
    boot,
    delete_all,
    prometheus_scraping,
    unique,
)

# the vCenter simulator's fixtures (tests/collectors/vsphere/conftest.py)
from tests.collectors.vsphere.conftest import (  # noqa: F401
    Vcsim,
    vcsim_bin,
    vcsim_factory,
    vcsim_small,
)
from tests.deploy.conftest import dashboard, fill, queries
from tests.support import wait_for
from tests.xdrs.bus.conftest import Broker, read_all
from xdrs.bus import BusConfig, Topics
from xdrs.bus.kafka import KafkaSink, create_topics
from xdrs.daemon.limits import PLATFORM_LIMITS
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs

pytestmark = [pytest.mark.openstack, pytest.mark.vcsim, pytest.mark.prometheus,
              pytest.mark.broker]  # fmt: skip


class Both:
    """Two collectors, one engine, two rebalancing daemons, on one broker."""

    def __init__(self, sim: Vcsim, cloud: Cloud, conn: Any, load: Load, broker: Broker) -> None:
        self.config = BusConfig(broker.bootstrap, topics=Topics(f"both{time.time_ns()}."),
                                fast_groups=True)  # fmt: skip
        create_topics(self.config)
        self.scope = scope_of(sim.url)
        self.vc = [Connection(ConnectionSpec(sim.url, "u", "p"), retries=3) for _ in "ab"]
        self.nova = cloud.connect()
        self.sinks = [KafkaSink(self.config) for _ in "ab"]
        bridge = EventBridge(self.sinks[0], BridgeOptions(self.scope, inventory_every=0))
        vsphere = VSphereCollector(self.vc[0], bridge, CollectorOptions(interval_s=1.0,
                                                                        perf=False))  # fmt: skip
        os_opts = OsOptions(CLOUD, interval_s=1.0, names=load.names)
        openstack = OpenStackCollector(conn, load.client(), self.sinks[1], os_opts)
        self.registry = CollectorRegistry()
        engine = Engine(EngineArgs(threshold=5, cooldown_s=1.0, pending_s=30.0))
        self.engine = EngineDaemon(self.config, engine, group=f"both-{time.time_ns()}",
                                   registry=self.registry)  # fmt: skip
        self.records: dict[str, list[ActionResult]] = {"vsphere": [], "openstack": []}
        self.movers: dict[str, Mover] = {
            "vsphere": VSphereMover(self.vc[1], self.scope, Patience(timeout_s=60)),
            "openstack": NovaMover(self.nova, CLOUD, replace(NOVA_PATIENCE, timeout_s=120)),
        }
        quick = {"vm_cooldown_s": 0.0, "host_hold_s": 0.0, "metric_age_s": 60.0}
        daemons = [
            RebalanceDaemon(self.config, self.movers[name], DaemonOptions(
                limits=replace(PLATFORM_LIMITS[lim], **quick),  # type: ignore[arg-type]
                on_record=self.records[name].append))
            for name, lim in (("vsphere", "vsphere-10g"), ("openstack", "nova"))
        ]  # fmt: skip
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=x.run, args=(self.stop,), daemon=True)
                        for x in (vsphere, openstack, self.engine, *daemons)]  # fmt: skip
        for t in self.threads:
            t.start()

    def ok(self, platform: str) -> list[ActionResult]:
        return [r for r in list(self.records[platform]) if r.status == "ok"]

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        for s in self.sinks:
            s.close()
        for c in self.vc:
            c.close()
        self.nova.close()


@pytest.fixture
def both(vcsim_small: Vcsim, cloud: Cloud, conn: Any, load: Load,  # noqa: F811
         broker: Broker) -> Iterator[Both]:  # fmt: skip
    b = Both(vcsim_small, cloud, conn, load, broker)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def scraped(both: Both, tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping the engine's exporter every second; its URL."""
    server, _ = start_http_server(0, addr="127.0.0.1", registry=both.registry)
    try:
        with prometheus_scraping(f"127.0.0.1:{server.server_address[1]}", tmp_path) as url:
            yield url
    finally:
        server.shutdown()


def _series(url: str, expr: str) -> list[dict[str, str]]:
    qs = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{qs}", timeout=10) as r:
        answer = orjson.loads(r.read())
    assert answer["status"] == "success", (expr, answer)
    return [s["metric"] for s in answer["data"]["result"]]


def _side_by_side(url: str, nova: str, vsphere: str) -> dict[str, set[str]]:
    """Each per-cluster dashboard panel's clusters, the variable holding both platforms'."""
    panels = {t: es for t, es in queries(dashboard()).items()
              if any("by (cluster)" in e or e.startswith("xdrs_") for e in es)}  # fmt: skip
    out = {}
    for title, exprs in panels.items():
        out[title] = {m.get("cluster", "") for e in exprs
                      for m in _series(url, fill(e, [nova, vsphere], "4s"))}  # fmt: skip
    return out


def _answered_once(both: Both) -> None:
    """On the actions topic, every move was answered by one daemon, once: at most one
    ``started`` and one result per key, under the cluster of the recommendation that holds
    the move, none refused as foreign; no key recorded by both daemons."""
    mine = {name: {r.key for r in list(both.records[name])} for name in both.records}
    topic = [x.event for x in read_all(both.config, both.config.topics.actions)]
    # read after the topic: every recommendation a result answers is in it
    planned = {m.key: r.cluster for r in list(both.engine.published) for m in r.moves}
    results = [e for e in topic if isinstance(e, ActionResult)]
    assert results and len(results) == len(topic)
    by_key: dict[str, list[str]] = {}
    for e in results:
        by_key.setdefault(e.key, []).append(e.status)
        assert e.cluster == planned[e.key], e
        assert not e.error.startswith("ForeignObject"), e
    for key, statuses in by_key.items():
        assert statuses.count("started") <= 1, (key, statuses)
        assert sum(x in ("ok", "failed", "skipped") for x in statuses) <= 1, (key, statuses)
    assert not mine["vsphere"] & mine["openstack"]  # no move answered by both daemons
    assert mine["vsphere"] | mine["openstack"] <= set(by_key)
    assert any(s == ["started", "ok"] for s in by_key.values())


def test_one_engine_plans_both_platforms_and_each_daemon_moves_its_own(
    conn: Any, load: Load, both: Both, scraped: str
) -> None:
    made: list[Any] = []
    try:
        for _ in range(3):  # each kept as it boots: a failed boot leaves none behind
            made.append(boot(conn, unique("both"), "m1.medium", availability_zone="az1:fake-1"))
        load.refresh(conn)
        for s in made:
            load.model.set(s.id, 95.0)  # fake-1 busy, fake-2 idle; vcsim_small starts overloaded
        assert wait_for(lambda: both.ok("vsphere") and both.ok("openstack"), 240, every=1.0), (
            both.records
        )
        nova = cluster_id(CLOUD)
        assert all(r.cluster == nova for r in both.records["openstack"])
        assert all(r.cluster.startswith(f"{both.scope}/") for r in both.records["vsphere"])
        _answered_once(both)
        recs = list(both.engine.published)
        assert {r.cluster == nova for r in recs} == {True, False}  # one engine, both platforms
        for r in recs:  # no move leaves its platform (ids are scoped by endpoint)
            scope = CLOUD if r.cluster == nova else both.scope
            assert all(x.startswith(f"{scope}/") for m in r.moves for x in (m.vm, m.src, m.dst))
        shown = {c for c in both.engine.views}
        assert nova in shown and any(c.startswith(f"{both.scope}/") for c in shown)
        vsphere = next(c for c in shown if c != nova)
        for c in (nova, vsphere):  # side by side in the exporter
            assert both.registry.get_sample_value("xdrs_cluster_vms", {"cluster": c})
        # and in the dashboard: its queries on a real Prometheus scraping the engine
        want = {nova, vsphere}

        def scraped_both() -> bool:
            return want <= {m["cluster"] for m in _series(scraped, "xdrs_cluster_imbalance")}

        assert wait_for(scraped_both, 30, every=0.5)
        panels = _side_by_side(scraped, nova, vsphere)
        assert len(panels) >= 6 and all(want <= got for got in panels.values()), panels
    finally:
        for s in made:
            load.model.set(s.id, None)
        delete_all(conn, made)
