"""Read one cloud's compute picture: services, Placement capacity, servers, server groups.

Plain records out (no events, no arrays). Capacity and allocation ratios come from
Placement (``/resource_providers/{id}/inventories`` and ``/usages``): the hypervisor
statistics of the compute API are gone from microversion 2.88. Servers are listed with the
SDK's pager, which follows Nova's ``next`` links, so there is no 1,000-server ceiling.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HostRecord", "Inventory", "ServerGroupRecord", "ServerRecord", "collect_inventory"]

RESOURCES = ("VCPU", "MEMORY_MB", "DISK_GB")


@dataclass(frozen=True)
class HostRecord:
    """One compute host: its service state and its resource provider's inventory.

    ``total``, ``reserved``, ``ratio`` and ``used`` are per resource class of
    :data:`RESOURCES` (vCPUs, MiB, GiB); ``used`` is Placement's usage (every allocation,
    powered-off servers and migrations in flight included).
    """

    name: str
    zone: str
    enabled: bool
    up: bool
    forced_down: bool
    disabled_reason: str = ""
    total: Mapping[str, float] = field(default_factory=dict)
    reserved: Mapping[str, float] = field(default_factory=dict)
    ratio: Mapping[str, float] = field(default_factory=dict)
    used: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerRecord:
    """One server: where it runs, its size (from the embedded flavor) and its state."""

    id: str
    name: str
    host: str | None
    zone: str
    status: str
    task_state: str | None
    flavor: str
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class ServerGroupRecord:
    """A server group: ``policy`` is affinity, anti-affinity, soft-affinity or
    soft-anti-affinity."""

    id: str
    name: str
    policy: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Inventory:
    source: str
    collected_at: float
    hosts: tuple[HostRecord, ...]
    servers: tuple[ServerRecord, ...]
    groups: tuple[ServerGroupRecord, ...]


def collect_inventory(conn: Any, source: str) -> Inventory:
    """Everything the placement picture needs from ``conn`` (an SDK connection)."""
    return Inventory(
        source=source,
        collected_at=time.time(),
        hosts=tuple(_hosts(conn)),
        servers=tuple(_server(s) for s in conn.compute.servers(details=True, all_projects=True)),
        groups=tuple(_group(g) for g in conn.compute.server_groups(all_projects=True)),
    )


def _hosts(conn: Any) -> Iterable[HostRecord]:
    providers = {rp.name: rp.id for rp in conn.placement.resource_providers()}
    for svc in conn.compute.services(binary="nova-compute"):
        rp = providers.get(svc.host)
        inv = _get(conn, f"/resource_providers/{rp}/inventories", "inventories") if rp else {}
        used = _get(conn, f"/resource_providers/{rp}/usages", "usages") if rp else {}
        yield HostRecord(
            name=svc.host,
            zone=svc.availability_zone or "",
            enabled=svc.status == "enabled",
            up=svc.state == "up",
            forced_down=bool(svc.is_forced_down),
            disabled_reason=svc.disabled_reason or "",
            total={r: float(inv[r]["total"]) for r in RESOURCES if r in inv},
            reserved={r: float(inv[r]["reserved"]) for r in RESOURCES if r in inv},
            ratio={r: float(inv[r]["allocation_ratio"]) for r in RESOURCES if r in inv},
            used={r: float(used.get(r, 0)) for r in RESOURCES},
        )


def _get(conn: Any, path: str, key: str) -> dict[str, Any]:
    resp = conn.placement.get(path)
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()[key]
    return body


def _server(s: Any) -> ServerRecord:
    flavor = s.flavor
    return ServerRecord(
        id=s.id,
        name=s.name or "",
        host=s.compute_host or None,
        zone=s.availability_zone or "",
        status=s.status or "",
        task_state=s.task_state or None,
        flavor=flavor.original_name or flavor.name or "",
        vcpus=int(flavor.vcpus or 0),
        ram_mb=int(flavor.ram or 0),
        disk_gb=int(flavor.disk or 0),
    )


def _group(g: Any) -> ServerGroupRecord:
    policy = g.policy or (g.policies[0] if g.policies else "")
    return ServerGroupRecord(g.id, g.name or "", policy, tuple(g.member_ids or ()))
