"""Inventory records -> xdrs inventory events and a :class:`placement.ClusterState`.

One cloud (``scope``, e.g. its clouds.yaml name) is one cluster, ``SCOPE/nova``. A host's
migration domain is its availability zone and the set of host aggregates it belongs to
(other than the zones' own): Nova does not live-migrate across zones without being forced,
aggregates carry the scheduler's host restrictions (flavors, images, tenants tied to them),
and xdrs never proposes a move between hosts of different zones or aggregate sets
(``az1``, or ``az1|gpu,ssd`` for a host in aggregates ``gpu`` and ``ssd``). Ids are
prefixed with the scope (``SCOPE/fake-1``, ``SCOPE/<server uuid>``) so several clouds and
vCenters share one bus.

What goes in: every nova-compute host (a disabled or forced-down service -> ``maintenance``,
to be evacuated; a service that is down without being forced -> ``disabled``, nothing moves
to or from it) and its ``ACTIVE`` servers, the ones live migration can move. A server with a
task in progress is pinned. Placement usage that these servers do not account for (stopped
servers, migrations in flight) is added to the host's reserved amount, so capacity agrees
with Placement. Affinity and anti-affinity groups become VM-VM rules; the soft policies are
Nova's weighers, not rules, and the placement core has no soft VM-VM rule: they are left out.
"""

from __future__ import annotations

import numpy as np

from collectors.events import HostEvent, Rule, RulesEvent, VmEvent
from collectors.openstack.inventory import HostRecord, Inventory, ServerRecord
from placement import ClusterState, Rules, make_state

__all__ = ["RULE_TYPES", "cluster_id", "domain", "inventory_events", "to_cluster_state"]

RULE_TYPES = {"affinity": "affinity", "anti-affinity": "anti_affinity"}
MOVABLE = frozenset({"ACTIVE"})
PLATFORM = "openstack"


def cluster_id(scope: str) -> str:
    return f"{scope}/nova"


def domain(h: HostRecord) -> str:
    """The host's migration domain: zone, and its aggregates when it has any."""
    zone = h.zone or "nova"
    return f"{zone}|{','.join(h.aggregates)}" if h.aggregates else zone


def movable_servers(inv: Inventory) -> list[ServerRecord]:
    names = {h.name for h in inv.hosts}
    return [s for s in inv.servers if s.status in MOVABLE and s.host in names and s.vcpus > 0]


def inventory_events(inv: Inventory, scope: str) -> list[HostEvent | VmEvent | RulesEvent]:
    """Host events, then server events, then the cluster's rules event."""
    cluster = cluster_id(scope)
    servers = movable_servers(inv)
    by_host: dict[str | None, list[ServerRecord]] = {}
    for s in servers:
        by_host.setdefault(s.host, []).append(s)
    hosts: list[HostEvent | VmEvent | RulesEvent] = [
        _host_event(h, cluster, scope, by_host.get(h.name, []))
        for h in inv.hosts
        if h.total.get("VCPU")
    ]
    known = {f"{scope}/{h.name}" for h in inv.hosts if h.total.get("VCPU")}
    vms: list[HostEvent | VmEvent | RulesEvent] = [
        VmEvent(
            cluster=cluster,
            uuid=f"{scope}/{s.id}",
            host=f"{scope}/{s.host}",
            vcpus=float(s.vcpus),
            memory_mb=float(s.ram_mb),
            disk_gb=float(s.disk_gb),
            name=s.name,
            pinned=s.task_state is not None,
        )
        for s in servers
        if f"{scope}/{s.host}" in known
    ]
    members = {e.uuid for e in vms if isinstance(e, VmEvent)}
    return [*hosts, *vms, RulesEvent(cluster=cluster, rules=_rules(inv, scope, members))]


def _host_event(h: HostRecord, cluster: str, scope: str, mine: list[ServerRecord]) -> HostEvent:
    """``mine``: the placed servers on ``h``."""
    counted = {
        "VCPU": sum(s.vcpus for s in mine),
        "MEMORY_MB": sum(s.ram_mb for s in mine),
        "DISK_GB": sum(s.disk_gb for s in mine),
    }

    def reserved(r: str) -> float:
        # usage that no listed server explains, in physical units (usage / ratio)
        extra = max(h.used.get(r, 0.0) - counted[r], 0.0) / h.ratio.get(r, 1.0)
        return min(h.reserved.get(r, 0.0) + extra, h.total.get(r, 0.0))

    return HostEvent(
        cluster=cluster,
        uuid=f"{scope}/{h.name}",
        hostname=h.name,
        vcpus=h.total["VCPU"],
        memory_mb=h.total.get("MEMORY_MB", 0.0),
        disk_gb=h.total.get("DISK_GB", 0.0),
        vcpu_reserved=reserved("VCPU"),
        memory_mb_reserved=reserved("MEMORY_MB"),
        disk_gb_reserved=reserved("DISK_GB"),
        vcpu_ratio=h.ratio.get("VCPU", 1.0),
        memory_ratio=h.ratio.get("MEMORY_MB", 1.0),
        disk_ratio=h.ratio.get("DISK_GB", 1.0),
        maintenance=not h.enabled or h.forced_down,
        disabled=h.enabled and not h.forced_down and not h.up,
        domain=domain(h),
        platform=PLATFORM,
    )


def _rules(inv: Inventory, scope: str, members: set[str]) -> list[Rule]:
    rules = []
    for g in inv.groups:
        kind = RULE_TYPES.get(g.policy)
        vms = [v for v in (f"{scope}/{m}" for m in g.members) if v in members]
        if kind is not None and len(vms) >= 2:  # a group of one constrains nothing
            rules.append(Rule(name=f"{g.name or g.id} ({g.id})", type=kind, vms=vms))  # type: ignore[arg-type]
    return rules


def to_cluster_state(inv: Inventory, scope: str) -> ClusterState:
    """The cloud as one state, for the snapshot command.

    With no metrics, a server's demand is its allocation (the conservative guess).
    """
    events = inventory_events(inv, scope)
    hosts = [e for e in events if isinstance(e, HostEvent)]
    vms = [e for e in events if isinstance(e, VmEvent)]
    rules = next(e for e in events if isinstance(e, RulesEvent)).rules
    h_index = {h.uuid: i for i, h in enumerate(hosts)}
    v_index = {v.uuid: i for i, v in enumerate(vms)}
    size = np.array([(h.vcpus, h.memory_mb, h.disk_gb) for h in hosts], float).reshape(-1, 3)
    reserved = np.array(
        [(h.vcpu_reserved, h.memory_mb_reserved, h.disk_gb_reserved) for h in hosts], float
    ).reshape(-1, 3)
    ratio = np.array([(h.vcpu_ratio, h.memory_ratio, h.disk_ratio) for h in hosts], float)
    alloc = np.array([(v.vcpus, v.memory_mb, v.disk_gb) for v in vms], float).reshape(-1, 3)
    zones = {z: i for i, z in enumerate(sorted({h.domain for h in hosts}))}
    vv = [(r.name, r.type == "anti_affinity", [v_index[v] for v in r.vms]) for r in rules]
    return make_state(
        [h.uuid for h in hosts],
        [v.uuid for v in vms],
        size,
        alloc,
        alloc.copy(),
        np.array([h_index[v.host] for v in vms], dtype=np.int64),
        alloc_cap=np.maximum(size - reserved, 0.0) * ratio.reshape(-1, 3),
        domain=np.array([zones[h.domain] for h in hosts], dtype=np.int64),
        maintenance=np.array([h.maintenance for h in hosts], dtype=bool),
        disabled=np.array([h.disabled for h in hosts], dtype=bool),
        pinned=np.array([v.pinned for v in vms], dtype=bool),
        rules=Rules.build(len(hosts), vv=vv),
    )
