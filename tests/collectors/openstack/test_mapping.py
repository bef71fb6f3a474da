"""The mapping from inventory records to events and state, fuzzed with hypothesis.

The records are what :func:`collect_inventory` reads from a cloud (the real-Nova tests in
this folder check that reading); here any mix of hosts, servers and groups must give events
that pass the bus's own validation and a state the placement core accepts.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.events import HostEvent, RulesEvent, VmEvent, decode, encode, inventory_key
from collectors.openstack import (
    HostRecord,
    Inventory,
    ServerGroupRecord,
    ServerRecord,
    inventory_events,
    to_cluster_state,
)

HOSTS = [f"h{i}" for i in range(5)]
POLICIES = ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]


@st.composite
def inventories(draw: st.DrawFn) -> Inventory:
    hosts = []
    for name in draw(st.lists(st.sampled_from(HOSTS), min_size=1, max_size=5, unique=True)):
        total = {"VCPU": draw(st.integers(1, 128)), "MEMORY_MB": draw(st.integers(512, 1 << 20))}
        hosts.append(
            HostRecord(
                name=name,
                zone=draw(st.sampled_from(["az1", "az2", ""])),
                enabled=draw(st.booleans()),
                up=draw(st.booleans()),
                forced_down=draw(st.booleans()),
                total={**total, "DISK_GB": 100.0},
                reserved={"VCPU": 0.0, "MEMORY_MB": draw(st.integers(0, 512)), "DISK_GB": 0.0},
                ratio={"VCPU": 16.0, "MEMORY_MB": 1.5, "DISK_GB": 1.0},
                used={
                    "VCPU": draw(st.integers(0, 4096)),
                    "MEMORY_MB": draw(st.integers(0, 1 << 21)),
                },
            )
        )
    servers = [
        ServerRecord(
            id=f"s{i}",
            name=f"server {i}",
            host=draw(st.sampled_from([*HOSTS, None])),
            zone="az1",
            status=draw(st.sampled_from(["ACTIVE", "SHUTOFF", "ERROR", "BUILD"])),
            task_state=draw(st.sampled_from([None, "migrating"])),
            flavor="f",
            vcpus=draw(st.integers(0, 16)),
            ram_mb=draw(st.integers(64, 65536)),
            disk_gb=draw(st.integers(0, 100)),
        )
        for i in range(draw(st.integers(0, 12)))
    ]
    ids = [s.id for s in servers]
    groups = [
        ServerGroupRecord(
            f"g{i}",
            f"group {i}",
            draw(st.sampled_from(POLICIES)),
            tuple(draw(st.lists(st.sampled_from(ids), unique=True)) if ids else ()),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return Inventory("test", 0.0, tuple(hosts), tuple(servers), tuple(groups))


@settings(max_examples=150, deadline=None)
@given(inventories())
def test_events_pass_the_bus_validation_and_agree(inv: Inventory) -> None:
    events = inventory_events(inv, "c1")
    for e in events:
        assert decode(inventory_key(e.cluster, "x").encode(), encode(e)) == e
    hosts = {e.uuid: e for e in events if isinstance(e, HostEvent)}
    vms = [e for e in events if isinstance(e, VmEvent)]
    rules = [e for e in events if isinstance(e, RulesEvent)]
    assert len(rules) == 1
    for v in vms:
        assert v.host in hosts  # never a server on a host we did not describe
        rec = next(s for s in inv.servers if f"c1/{s.id}" == v.uuid)
        assert rec.status == "ACTIVE" and v.pinned == (rec.task_state is not None)
    for h in hosts.values():
        rec = next(r for r in inv.hosts if f"c1/{r.name}" == h.uuid)
        assert h.maintenance == (not rec.enabled or rec.forced_down)
        assert not (h.maintenance and h.disabled)
        assert 0 <= h.vcpu_reserved <= h.vcpus and 0 <= h.memory_mb_reserved <= h.memory_mb
    members = {v.uuid for v in vms}
    for r in rules[0].rules:
        assert r.type in ("affinity", "anti_affinity") and len(r.vms) >= 2
        assert set(r.vms) <= members


@settings(max_examples=100, deadline=None)
@given(inventories())
def test_state_has_one_domain_per_zone(inv: Inventory) -> None:
    state = to_cluster_state(inv, "c1")
    zones = {(h.zone or "nova") for h in inv.hosts}
    assert state.n_hosts == len(inv.hosts)
    assert int(state.domain.max(initial=-1)) + 1 == len(zones)
    assert (state.alloc == state.demand).all()  # no metrics: demand is the allocation
