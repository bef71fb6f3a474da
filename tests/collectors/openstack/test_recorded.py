"""The collector on the test cloud's recorded answers (``data/recorded.json``, recorded by
``scripts/openstack/record.py``), served again over loopback HTTP: no cloud needed, so these
run in the fast set; scaled copies check paging and the query count at size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.events import HostEvent, MetricBatch, RulesEvent, VmEvent
from collectors.openstack import CloudSpec, OpenStackError, collect_inventory, connect
from collectors.openstack.collector import CollectorOptions, OpenStackCollector
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
