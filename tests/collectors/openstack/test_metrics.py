"""Load from the real Prometheus scraping our exporter over the real Nova: one query per
metric per cycle, batches that carry the exporter's load, and holds for missing series."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collectors.events import HostEvent, MetricBatch, VmEvent
from collectors.openstack import cluster_id
from collectors.openstack.collector import CollectorOptions, CollectorStats, OpenStackCollector
from collectors.openstack.prometheus import PromClient, PromError, PromSpec
from tests.collectors.openstack.conftest import CLOUD, ListSink, Load, boot, delete_all, unique
from tests.support import wait_for

pytestmark = [pytest.mark.openstack, pytest.mark.prometheus]

CLUSTER = cluster_id(CLOUD)


@pytest.fixture(scope="module")
def servers(conn: Any) -> Iterator[list[Any]]:
    """Two servers on fake-1 and one on fake-3."""
    made: list[Any] = []
    try:
        for z, h in (("az1", "fake-1"), ("az1", "fake-1"), ("az2", "fake-3")):
            made.append(boot(conn, unique("load"), availability_zone=f"{z}:{h}"))
        yield made
    finally:
        delete_all(conn, made)


def _collector(conn: Any, load: Load, sink: ListSink) -> tuple[OpenStackCollector, Any]:
    registry = CollectorRegistry()
    opts = CollectorOptions(CLOUD, interval_s=1.0, names=load.names)
    col = OpenStackCollector(conn, load.client(), sink, opts, stats=CollectorStats(registry))
    return col, registry


def _batches(items: list[tuple[str, str, Any]]) -> dict[str, MetricBatch]:
    return {e.host: e for kind, _, e in items if kind == "metrics"}


def _inventory(items: list[tuple[str, str, Any]]) -> dict[str, HostEvent | VmEvent]:
    """The last host and server events of ``items``, by uuid."""
    return {e.uuid: e for k, _, e in items if isinstance(e, HostEvent | VmEvent)}


def _fresh(col: OpenStackCollector, sink: ListSink, want: set[str]) -> Any:
    """Cycle until the batches name exactly the hosts ``want`` and every server on them."""

    def ok() -> bool:
        col.cycle()
        got = _batches(sink.items)
        return set(got) == want and not col.held_servers

    return ok


def test_batches_carry_the_exporters_load_with_three_queries(
    conn: Any, load: Load, servers: list[Any]
) -> None:
    load.refresh(conn)
    busy, idle = servers[0].id, servers[1].id
    load.model.set(busy, 80.0)
    load.model.set(idle, 5.0)
    sink = ListSink()
    col, registry = _collector(conn, load, sink)
    hosts = {f"{CLOUD}/fake-{i}" for i in (1, 2, 3)}

    def settled() -> bool:
        sink.take()
        col.cycle()
        b = _batches(sink.items).get(f"{CLOUD}/fake-1")
        if set(_batches(sink.items)) != hosts or b is None or col.held_servers:
            return False
        cpu = dict(zip(b.vms, b.cpu_pct, strict=True))
        return abs(cpu.get(f"{CLOUD}/{busy}", 0) - 80) < 1 and abs(cpu[f"{CLOUD}/{idle}"] - 5) < 1

    try:
        assert wait_for(settled, 40, every=1.0), sink.items
        b = _batches(sink.items)[f"{CLOUD}/fake-1"]
        assert b.cluster == CLUSTER and b.host_cpu_pct is not None
        # fake-1: 0.2 base cores + 1 vCPU at 80 % + 1 at 5 % of 10 cores (m1.small: 1 vCPU)
        assert b.host_cpu_pct == pytest.approx(100 * (0.2 + 0.85) / 10, abs=1.5)
        assert all(m > 0 for m in b.mem_mib)
        per_cycle = registry.get_sample_value(
            "xdrs_openstack_prometheus_queries_per_cycle", {"cluster": CLUSTER}
        )
        assert per_cycle == 3  # with three servers as with none: never one per server
        assert col.prom.queries == 3 * col.done
        # inventory was published once; later cycles publish only batches
        kinds = [k for k, _, _ in sink.take()]
        assert "inventory" not in kinds
    finally:
        load.model.set(busy, None)
        load.model.set(idle, None)


def test_a_host_without_series_is_held_and_counted(
    conn: Any, load: Load, servers: list[Any]
) -> None:
    load.refresh(conn)
    sink = ListSink()
    col, registry = _collector(conn, load, sink)
    hosts = {f"{CLOUD}/fake-{i}" for i in (1, 2, 3)}
    assert wait_for(_fresh(col, sink, hosts), 40, every=1.0)
    load.model.hide("fake-1")
    try:
        sink.take()

        def held() -> bool:
            col.cycle()
            return f"{CLOUD}/fake-1" in col.held_hosts

        assert wait_for(held, 40, every=1.0)
        last = sink.take()
        col.cycle()
        assert set(_batches(sink.items)) == hosts - {f"{CLOUD}/fake-1"}
        # the servers' gauges go stale at once, the host's rate after its window: the last
        # inventory event of each says held
        inv = _inventory(last)
        host = inv[f"{CLOUD}/fake-1"]
        assert isinstance(host, HostEvent) and host.disabled
        mine = [e for e in inv.values() if isinstance(e, VmEvent)]
        assert {f"{CLOUD}/{s.id}" for s in servers[:2]} <= {e.uuid for e in mine}
        assert all(e.pinned for e in mine)
        labels = {"cluster": CLUSTER, "kind": "host"}
        assert registry.get_sample_value("xdrs_openstack_held", labels) == 1
        gaps = registry.get_sample_value("xdrs_openstack_metric_gaps_total", labels)
        col.cycle()
        assert registry.get_sample_value("xdrs_openstack_metric_gaps_total", labels) == gaps + 1
    finally:
        load.model.hide("fake-1", False)
    assert wait_for(_fresh(col, sink, hosts), 40, every=1.0)
    back = _inventory(sink.items)
    host = back[f"{CLOUD}/fake-1"]
    assert isinstance(host, HostEvent) and not host.disabled
    assert registry.get_sample_value("xdrs_openstack_held", labels) == 0


def test_a_server_without_series_is_left_out_and_pinned(
    conn: Any, load: Load, servers: list[Any]
) -> None:
    load.refresh(conn)
    sink = ListSink()
    col, registry = _collector(conn, load, sink)
    gone = f"{CLOUD}/{servers[2].id}"
    load.model.hide(servers[2].id)
    try:

        def held() -> bool:
            col.cycle()
            return col.held_servers == {gone} and not col.held_hosts

        assert wait_for(held, 40, every=1.0)
        inv = _inventory(sink.items)
        sink.take()
        col.cycle()
        batch = _batches(sink.items)[f"{CLOUD}/fake-3"]
        assert gone not in batch.vms  # the host still reports; the server is left out
        vm = inv[gone]
        assert isinstance(vm, VmEvent) and vm.pinned
        labels = {"cluster": CLUSTER, "kind": "server"}
        assert registry.get_sample_value("xdrs_openstack_held", labels) == 1
    finally:
        load.model.hide(servers[2].id, False)


def test_prometheus_unreachable_is_one_error_naming_it() -> None:
    client = PromClient(PromSpec("http://127.0.0.1:9", timeout_s=2))
    with pytest.raises(PromError, match=r"Prometheus at http://127.0.0.1:9: .*refused"):
        client.query("up", "job")


def test_a_bad_query_is_prometheus_own_error(load: Load) -> None:
    with pytest.raises(PromError, match=r"failed: .*parse error"):
        load.client().query("rate(", "x")
