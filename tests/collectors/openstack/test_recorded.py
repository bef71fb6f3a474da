"""The collector on the test cloud's recorded answers (``data/recorded.json``, recorded by
``scripts/openstack/record.py``), served again over loopback HTTP: no cloud needed, so these
run in the fast set; scaled copies check paging and the query count at size."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from collectors.events import HostEvent, MetricBatch, RulesEvent, VmEvent
from collectors.openstack import CloudSpec, OpenStackError, collect_inventory, connect
from collectors.openstack.collector import CollectorOptions, CollectorStats, OpenStackCollector
from collectors.openstack.mapping import inventory_events
from collectors.openstack.prometheus import PromClient, PromSpec, SeriesNames
from tests.collectors.openstack.conftest import ListSink
from tests.collectors.openstack.replay import Recording, Replay, load, scaled

CLOUD = "xdrs-test"
NAMES = SeriesNames(window_s=5.0)  # the recording's


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    replays: list[Replay] = []

    def start(rec: Recording) -> tuple[Replay, Any]:
        r = Replay(rec)
        replays.append(r)
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(r.clouds_yaml(tmp_path / "c.yaml", CLOUD)))
        return r, connect(CloudSpec(CLOUD))

    yield start
    for r in replays:
        r.close()


def _cycle(replay: Replay, conn: Any) -> tuple[OpenStackCollector, ListSink]:
    sink = ListSink()
    col = OpenStackCollector(conn, PromClient(PromSpec(replay.prometheus)), sink,
                             CollectorOptions(CLOUD, names=NAMES))  # fmt: skip
    col.cycle()
    return col, sink


def test_recorded_inventory_maps_hosts_zones_servers_and_groups(serve: Any) -> None:
    _, conn = serve(load())
    inv = collect_inventory(conn, CLOUD)
    assert sorted(h.name for h in inv.hosts) == ["fake-1", "fake-2", "fake-3"]
    assert {h.name: h.zone for h in inv.hosts} == {"fake-1": "az1", "fake-2": "az1",
                                                   "fake-3": "az2"}  # fmt: skip
    assert all(h.total["VCPU"] == 10 and h.total["MEMORY_MB"] == 8192 for h in inv.hosts)
    by_name = {s.name: s for s in inv.servers}
    assert {"rec-a1", "rec-a2", "rec-b"} <= set(by_name)
    assert (by_name["rec-a1"].host, by_name["rec-a1"].vcpus) == ("fake-1", 2)
    assert by_name["rec-b"].zone == "az2"
    events = inventory_events(inv, CLOUD)
    rules = next(e for e in events if isinstance(e, RulesEvent)).rules
    apart = {f"{CLOUD}/{by_name[n].id}" for n in ("rec-a1", "rec-a2")}
    assert [(r.type, set(r.vms)) for r in rules] == [("anti_affinity", apart)]


def test_recorded_cycle_publishes_batches_with_three_queries(serve: Any) -> None:
    replay, conn = serve(load())
    col, sink = _cycle(replay, conn)
    batches = [e for k, _, e in sink.items if isinstance(e, MetricBatch)]
    assert {b.host for b in batches} == {f"{CLOUD}/fake-{i}" for i in (1, 2, 3)}
    assert sum(len(b.vms) for b in batches) == 3 and not col.held_servers
    cpu = [c for b in batches for c in b.cpu_pct]
    assert all(0 <= c <= 100 for c in cpu) and max(cpu) > 0
    assert col.prom.queries == 3
    assert sum("api/v1/query" in r for r in replay.rec.requests) == 3


@pytest.mark.parametrize(("hosts", "servers", "pages"), [(40, 1000, 1), (30, 2500, 3)],
                         ids=["one-page", "paged"])  # fmt: skip
def test_scaled_recording_is_read_across_pages_with_three_queries(
    serve: Any, hosts: int, servers: int, pages: int
) -> None:
    replay, conn = serve(scaled(load(), hosts, servers))
    col, sink = _cycle(replay, conn)
    inv = [e for k, _, e in sink.items if k == "inventory"]
    assert sum(isinstance(e, HostEvent) for e in inv) == hosts
    assert sum(isinstance(e, VmEvent) for e in inv) == servers
    batches = [e for _, _, e in sink.items if isinstance(e, MetricBatch)]
    assert len(batches) == hosts and sum(len(b.vms) for b in batches) == servers
    assert col.prom.queries == 3
    assert sum("/servers/detail" in r for r in replay.rec.requests) == pages


def test_a_missing_answer_is_one_error_naming_the_cloud(serve: Any) -> None:
    rec = load()
    del rec.exchanges[next(k for k in rec.exchanges if k[1].endswith("/usages"))]
    replay, conn = serve(rec)
    with pytest.raises(OpenStackError, match=rf"^cloud {CLOUD}: HTTP 404"):
        OpenStackCollector(conn, PromClient(PromSpec(replay.prometheus)), ListSink(),
                           CollectorOptions(CLOUD, names=NAMES)).cycle()  # fmt: skip


def test_a_steady_cycle_reads_no_provider_again(serve: Any) -> None:
    replay, conn = serve(scaled(load(), 20, 100))
    col, _ = _cycle(replay, conn)
    per_provider = sum("/inventories" in r or "/usages" in r for r in replay.rec.requests)
    assert col.providers.fetched == 20 and per_provider == 40
    col.cycle()  # every provider's generation unchanged: Placement's listing only
    assert sum("/inventories" in r or "/usages" in r for r in replay.rec.requests) == 40
    assert col.providers.fetched == 20


def test_scaled_server_groups_are_read_across_pages(serve: Any) -> None:
    # 1,200 groups: Nova's pages of 1,000 by offset, then an empty page ends the listing
    replay, conn = serve(scaled(load(), 30, 2500, groups=1200))
    inv = collect_inventory(conn, CLOUD)
    assert len(inv.groups) == 1200 and len({g.id for g in inv.groups}) == 1200
    asked = [r for r in replay.rec.requests if "/os-server-groups" in r]
    assert [r.rsplit("offset=", 1)[1] for r in asked] == ["0", "1000", "1200"]
    rules = next(e for e in inventory_events(inv, CLOUD) if isinstance(e, RulesEvent)).rules
    assert len(rules) == 1200  # the second page's groups too
    last = replay.rec.groups[-1]
    assert rules[-1].type == "anti_affinity"
    assert rules[-1].vms == [f"{CLOUD}/{m}" for m in last["members"]]


def _edit(rec: Recording, part: str, change: Callable[[Any], None]) -> None:
    """The recorded GET answer whose path holds ``part``, its JSON body changed in place."""
    key = next(k for k in rec.exchanges if k[0] == "GET" and part in k[1])
    body = orjson.loads(rec.exchanges[key]["body"])
    change(body)
    rec.exchanges[key] = {**rec.exchanges[key], "body": orjson.dumps(body).decode()}


def _fqdn(body: Any) -> None:
    for item in body.get("resource_providers", []):
        item["name"] += ".cloud.example"
    for item in body.get("hypervisors", []):
        item["hypervisor_hostname"] += ".cloud.example"


def test_providers_named_by_fqdn_are_found_through_the_hypervisors(serve: Any) -> None:
    # libvirt names a provider after the hypervisor hostname (an FQDN here) while the compute
    # service's host is the short name: the hypervisor's id (the provider's UUID) links them
    rec = load()
    _edit(rec, "/resource_providers", _fqdn)
    _edit(rec, "/os-hypervisors/detail", _fqdn)
    _, conn = serve(rec)
    inv = collect_inventory(conn, CLOUD)
    assert inv.unmatched == ()
    assert all(h.total["VCPU"] == 10 and h.provider for h in inv.hosts)
    events = inventory_events(inv, CLOUD)
    hosts = {e.hostname for e in events if isinstance(e, HostEvent)}
    assert hosts == {"fake-1", "fake-2", "fake-3"}
    vms = {e.name: e.host for e in events if isinstance(e, VmEvent)}
    assert vms == {"rec-a1": f"{CLOUD}/fake-1", "rec-a2": f"{CLOUD}/fake-2",
                   "rec-b": f"{CLOUD}/fake-3"}  # fmt: skip


def test_a_service_with_no_provider_is_counted_and_logged_once(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # fake-3's provider renamed and its hypervisor not listed: nothing links the service
    rec = load()
    _edit(rec, "/resource_providers", lambda b: [
        rp.update(name="fake-3.cloud.example") for rp in b["resource_providers"]
        if rp["name"] == "fake-3"])  # fmt: skip
    _edit(rec, "/os-hypervisors/detail", lambda b: b.update(hypervisors=[
        h for h in b["hypervisors"] if h["service"]["host"] != "fake-3"]))  # fmt: skip
    replay, conn = serve(rec)
    registry = CollectorRegistry()
    col = OpenStackCollector(conn, PromClient(PromSpec(replay.prometheus)), ListSink(),
                             CollectorOptions(CLOUD, names=NAMES),
                             stats=CollectorStats(registry))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="collectors.openstack.inventory"):
        col.cycle()
        col.cycle()
    warned = [
        r.getMessage() for r in caplog.records if "no Placement resource provider" in r.getMessage()
    ]
    assert len(warned) == 1 and "fake-3" in warned[0], warned
    value = registry.get_sample_value("xdrs_openstack_hosts_without_provider",
                                      {"cluster": f"{CLOUD}/nova"})  # fmt: skip
    assert value == 1.0
    hosts = {e.hostname for e in col.current.values() if isinstance(e, HostEvent)}
    assert hosts == {"fake-1", "fake-2"}  # fake-1 and fake-2 still matched
    assert collect_inventory(conn, CLOUD).unmatched == ("fake-3",)


def test_a_host_aggregate_is_part_of_the_migration_domain(serve: Any) -> None:
    # the recorded zone aggregate az1 copied as a plain aggregate (no zone) holding fake-2
    def plain(body: Any) -> None:
        az1 = next(a for a in body["aggregates"] if a["name"] == "az1")
        ssd = dict(az1, id=99, name="ssd", hosts=["fake-2"], metadata={}, availability_zone=None)
        body["aggregates"].append(ssd)

    rec = load()
    _edit(rec, "/os-aggregates", plain)
    _, conn = serve(rec)
    events = inventory_events(collect_inventory(conn, CLOUD), CLOUD)
    domains = {e.hostname: e.domain for e in events if isinstance(e, HostEvent)}
    assert domains == {"fake-1": "az1", "fake-2": "az1|ssd", "fake-3": "az2"}
