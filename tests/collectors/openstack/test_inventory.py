"""Inventory against the real Nova: hosts, servers, server groups, zones, maintenance."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from collectors.events import HostEvent, RulesEvent, VmEvent
from collectors.openstack import (
    cluster_id,
    collect_inventory,
    inventory_events,
    to_cluster_state,
)
from placement.strategies import run
from tests.collectors.openstack.conftest import CLOUD, ZONES, boot, delete_all, unique

pytestmark = pytest.mark.openstack


@pytest.fixture(scope="module")
def servers(conn: Any) -> Iterator[dict[str, Any]]:
    """Two anti-affine servers in az1, two affine ones in az2, one plain m1.medium."""
    anti = conn.compute.create_server_group(name=unique("anti"), policy="anti-affinity")
    affine = conn.compute.create_server_group(name=unique("aff"), policy="affinity")
    soft = conn.compute.create_server_group(name=unique("soft"), policy="soft-anti-affinity")
    booted: dict[str, Any] = {}
    try:
        for i in range(2):
            booted[f"anti{i}"] = boot(
                conn, unique("anti"), availability_zone="az1", scheduler_hints={"group": anti.id}
            )
            booted[f"aff{i}"] = boot(
                conn, unique("aff"), availability_zone="az2", scheduler_hints={"group": affine.id}
            )
            booted[f"soft{i}"] = boot(conn, unique("soft"), scheduler_hints={"group": soft.id})
        booted["plain"] = boot(conn, unique("plain"), flavor="m1.medium")
        yield {"servers": booted, "anti": anti, "affine": affine, "soft": soft}
    finally:
        delete_all(conn, list(booted.values()))
        for g in (anti, affine, soft):
            conn.compute.delete_server_group(g)


def _events(conn: Any) -> tuple[dict[str, HostEvent], dict[str, VmEvent], RulesEvent]:
    events = inventory_events(collect_inventory(conn, "test"), CLOUD)
    hosts = {e.hostname: e for e in events if isinstance(e, HostEvent)}
    vms = {e.uuid: e for e in events if isinstance(e, VmEvent)}
    rules = [e for e in events if isinstance(e, RulesEvent)]
    assert len(rules) == 1
    return hosts, vms, rules[0]


def test_hosts_carry_placement_capacity_and_zone(conn: Any, servers: dict[str, Any]) -> None:
    hosts, _, _ = _events(conn)
    assert set(hosts) == set(ZONES)
    for name, h in hosts.items():
        assert h.uuid == f"{CLOUD}/{name}"
        assert h.cluster == cluster_id(CLOUD)
        assert h.domain == ZONES[name]
        # fake.MediumFakeDriver: 10 vCPUs, 8 GiB; Nova's default ratios 16 and 1.5
        assert (h.vcpus, h.memory_mb, h.vcpu_ratio, h.memory_ratio) == (10, 8192, 16.0, 1.5)
        assert not h.maintenance and not h.disabled
        assert h.platform == "openstack"


def test_servers_have_novas_host_and_flavor(conn: Any, servers: dict[str, Any]) -> None:
    _, vms, _ = _events(conn)
    for key, booted in servers["servers"].items():
        s = conn.compute.get_server(booted.id)
        vm = vms[f"{CLOUD}/{s.id}"]
        assert vm.host == f"{CLOUD}/{s.compute_host}"
        assert (vm.vcpus, vm.memory_mb) == ((2, 2048) if key == "plain" else (1, 1024))
        assert vm.name == s.name
        assert ZONES[s.compute_host] == s.availability_zone
    zones = {
        k: ZONES[conn.compute.get_server(v.id).compute_host] for k, v in servers["servers"].items()
    }
    assert zones["anti0"] == zones["anti1"] == "az1"
    assert zones["aff0"] == zones["aff1"] == "az2"


def test_servers_are_listed_across_pages(conn: Any, servers: dict[str, Any]) -> None:
    # the test cloud's Nova answers at most 5 servers a page ([api] max_limit)
    page = conn.compute.get("/servers?all_tenants=1").json()
    assert len(page["servers"]) == 5 and page.get("servers_links")
    _, vms, _ = _events(conn)
    mine = {f"{CLOUD}/{s.id}" for s in servers["servers"].values()}
    assert len(mine) > 5
    assert mine <= set(vms)


def test_server_groups_become_rules(conn: Any, servers: dict[str, Any]) -> None:
    _, _, rules = _events(conn)
    by_group = {r.name.rsplit("(", 1)[1].rstrip(")"): r for r in rules.rules}
    anti, affine = by_group[servers["anti"].id], by_group[servers["affine"].id]
    booted = servers["servers"]
    assert anti.type == "anti_affinity"
    assert sorted(anti.vms) == sorted(f"{CLOUD}/{booted[f'anti{i}'].id}" for i in range(2))
    assert affine.type == "affinity"
    assert sorted(affine.vms) == sorted(f"{CLOUD}/{booted[f'aff{i}'].id}" for i in range(2))
    assert servers["soft"].id not in by_group  # Nova's weigher, no hard rule
    hosts = {conn.compute.get_server(booted[f"anti{i}"].id).compute_host for i in range(2)}
    assert len(hosts) == 2  # Nova honoured the group, and the rule says the same


def test_disabled_compute_service_is_maintenance(conn: Any, servers: dict[str, Any]) -> None:
    svc = next(s for s in conn.compute.services(binary="nova-compute") if s.host == "fake-3")
    conn.compute.disable_service(svc, svc.host, svc.binary, disabled_reason="xdrs test")
    try:
        hosts, _, _ = _events(conn)
    finally:
        conn.compute.enable_service(svc, svc.host, svc.binary)
    assert hosts["fake-3"].maintenance
    assert not hosts["fake-1"].maintenance and not hosts["fake-2"].maintenance
    assert not _events(conn)[0]["fake-3"].maintenance


def test_forced_down_compute_service_is_maintenance(conn: Any, servers: dict[str, Any]) -> None:
    svc = next(s for s in conn.compute.services(binary="nova-compute") if s.host == "fake-3")
    conn.compute.update_service_forced_down(svc, svc.host, svc.binary, True)
    try:
        hosts, _, _ = _events(conn)
    finally:
        conn.compute.update_service_forced_down(svc, svc.host, svc.binary, False)
    assert hosts["fake-3"].maintenance and not hosts["fake-3"].disabled
    assert not _events(conn)[0]["fake-3"].maintenance


def test_placement_usage_not_explained_by_servers_is_reserved(
    conn: Any, servers: dict[str, Any]
) -> None:
    # a stopped server keeps its allocation in Placement but is not movable: its size
    # must be taken off its host's capacity
    s = servers["servers"]["plain"]
    conn.compute.stop_server(s)
    conn.compute.wait_for_server(s, status="SHUTOFF", wait=60, interval=0.5)
    try:
        hosts, vms, _ = _events(conn)
    finally:
        conn.compute.start_server(s)
        conn.compute.wait_for_server(s, status="ACTIVE", wait=60, interval=0.5)
    host = conn.compute.get_server(s.id).compute_host
    assert f"{CLOUD}/{s.id}" not in vms
    assert hosts[host].vcpu_reserved == pytest.approx(2 / 16)
    assert hosts[host].memory_mb_reserved == pytest.approx(512 + 2048 / 1.5)


@pytest.fixture
def group_quota(conn: Any) -> Iterator[None]:
    """The admin project's server-group quota (Nova's default: 10) raised for the test."""
    path = f"/os-quota-sets/{conn.current_project_id}"
    before = conn.compute.get(path).json()["quota_set"]["server_groups"]
    conn.compute.put(path, json={"quota_set": {"server_groups": 100}}).raise_for_status()
    try:
        yield
    finally:
        conn.compute.put(path, json={"quota_set": {"server_groups": before}})


def test_server_groups_are_listed_across_pages(conn: Any, group_quota: None) -> None:
    # Nova answers at most [api] max_limit (5 in the test cloud) groups a request
    policies = ["anti-affinity", "affinity", "soft-affinity", "soft-anti-affinity"] * 2
    made: list[Any] = []
    try:
        for p in policies:
            made.append(conn.compute.create_server_group(name=unique("page"), policy=p))
        first = conn.compute.get("/os-server-groups?all_projects=True").json()["server_groups"]
        assert len(first) == 5
        groups = collect_inventory(conn, "test").groups
    finally:
        for g in made:
            conn.compute.delete_server_group(g)
    by_id = {g.id: g for g in groups}
    assert len(by_id) == len(groups)  # no group twice
    for g in made:
        assert (by_id[g.id].name, by_id[g.id].policy, by_id[g.id].members) == (g.name, g.policy, ())


@pytest.fixture
def fqdn_provider(conn: Any) -> Iterator[str]:
    """fake-3's resource provider renamed to an FQDN (as libvirt names it after the
    hypervisor hostname) for the test, and named back after."""
    rp = next(r for r in conn.placement.resource_providers() if r.name == "fake-3")
    path = f"/resource_providers/{rp.id}"
    conn.placement.put(path, json={"name": "fake-3.xdrs.test"}).raise_for_status()
    try:
        yield rp.id
    finally:
        conn.placement.put(path, json={"name": "fake-3"}).raise_for_status()


def test_provider_named_otherwise_is_found_through_its_hypervisor(
    conn: Any, servers: dict[str, Any], fqdn_provider: str
) -> None:
    inv = collect_inventory(conn, "test")
    assert inv.unmatched == ()
    fake3 = next(h for h in inv.hosts if h.name == "fake-3")
    assert fake3.provider == fqdn_provider and fake3.total["VCPU"] == 10
    hosts, vms, _ = _events(conn)
    assert hosts["fake-3"].vcpus == 10
    on3 = [s for s in servers["servers"].values()
           if conn.compute.get_server(s.id).compute_host == "fake-3"]  # fmt: skip
    assert on3  # the affine pair, in az2
    assert all(vms[f"{CLOUD}/{s.id}"].host == f"{CLOUD}/fake-3" for s in on3)


@pytest.fixture
def crowded(conn: Any) -> Iterator[list[Any]]:
    """Three m1.medium servers on fake-1 (6 of its 10 vCPUs)."""
    made: list[Any] = []
    try:
        for _ in range(3):
            made.append(boot(conn, unique("crowd"), "m1.medium", availability_zone="az1:fake-1"))
        yield made
    finally:
        delete_all(conn, made)


def _moves_between(state: Any, a: str, b: str) -> list[tuple[str, str, str]]:
    plan = run("balance", state, seed=0)
    moves = [(state.vm_ids[v], state.host_ids[s], state.host_ids[d])
             for v, s, d in zip(plan.vm, plan.src, plan.dst, strict=True)]  # fmt: skip
    return [m for m in moves if {m[1], m[2]} == {f"{CLOUD}/{a}", f"{CLOUD}/{b}"}]


def test_an_aggregate_splits_its_zone_into_migration_domains(conn: Any, crowded: list[Any]) -> None:
    # fake-1 crowded, fake-2 its zone peer: balancing by allocation moves servers to fake-2
    without = collect_inventory(conn, "test")
    assert _moves_between(to_cluster_state(without, CLOUD), "fake-1", "fake-2")
    agg = conn.compute.create_aggregate(name=unique("xdrs-agg"))
    try:
        conn.compute.add_host_to_aggregate(agg, "fake-2")
        try:
            inv = collect_inventory(conn, "test")
        finally:
            conn.compute.remove_host_from_aggregate(agg, "fake-2")
    finally:
        conn.compute.delete_aggregate(agg)
    by_name = {h.name: h for h in inv.hosts}
    assert by_name["fake-2"].aggregates == (agg.name,)
    assert by_name["fake-1"].aggregates == by_name["fake-3"].aggregates == ()  # zones' own out
    hosts = {e.hostname: e for e in inventory_events(inv, CLOUD) if isinstance(e, HostEvent)}
    assert hosts["fake-1"].domain == "az1" and hosts["fake-3"].domain == "az2"
    assert hosts["fake-2"].domain == f"az1|{agg.name}"
    state = to_cluster_state(inv, CLOUD)
    assert len(set(state.domain.tolist())) == 3
    assert not _moves_between(state, "fake-1", "fake-2")  # nothing crosses the aggregate
