"""Read one cloud's compute picture: services, Placement capacity, servers, server groups.

Plain records out (no events, no arrays). Capacity and allocation ratios come from
Placement (``/resource_providers/{id}/inventories`` and ``/usages``): the hypervisor
statistics of the compute API are gone from microversion 2.88. Servers are listed page by
page following Nova's ``next`` links, so there is no 1,000-server ceiling, and read from the
JSON directly: building the SDK's resource objects cost about 10 ms a server, over three
minutes for 20,000 (``bench/openstack.py``). Server groups are paged too (by offset: Nova
answers at most its ``[api] max_limit`` groups per request and gives no ``next`` link; the
SDK's listing stopped at the first page).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HostRecord", "Inventory", "ServerGroupRecord", "ServerRecord", "collect_inventory"]

RESOURCES = ("VCPU", "MEMORY_MB", "DISK_GB")
PAGE = 1000  # servers asked per page (Nova answers at most its [api] max_limit)
MICROVERSION = "2.73"  # the flavor embedded in the server (2.47)


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


class ProviderCache:
    """Placement inventories and usages by resource provider, kept while the provider's
    generation stays the same (Placement bumps it on every inventory or allocation change):
    a steady cycle then asks Placement one listing, not two calls per host.
    ``fetched`` counts the providers read."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {}
        self.fetched = 0

    def get(self, conn: Any, rp: str, generation: int | None) -> tuple[dict[str, Any], ...]:
        hit = self.entries.get(rp)
        if hit is not None and generation is not None and hit[0] == generation:
            return hit[1], hit[2]
        inv = _get(conn, f"/resource_providers/{rp}/inventories")
        used = _get(conn, f"/resource_providers/{rp}/usages")
        self.fetched += 1
        # the generation the answers describe; two that differ are read again next time
        gen = inv.get("resource_provider_generation")
        if not isinstance(gen, int) or gen != used.get("resource_provider_generation"):
            gen = -1
        self.entries[rp] = (gen, inv["inventories"], used["usages"])
        return inv["inventories"], used["usages"]


def collect_inventory(conn: Any, source: str, cache: ProviderCache | None = None) -> Inventory:
    """Everything the placement picture needs from ``conn`` (an SDK connection);
    ``cache`` keeps Placement's answers from one call to the next (a collector's)."""
    return Inventory(
        source=source,
        collected_at=time.time(),
        hosts=tuple(_hosts(conn, cache or ProviderCache())),
        servers=tuple(_server(s) for s in _server_pages(conn)),
        groups=tuple(_group(g) for g in _group_pages(conn)),
    )


def _hosts(conn: Any, cache: ProviderCache) -> Iterable[HostRecord]:
    providers = {rp["name"]: rp for rp in _get(conn, "/resource_providers")["resource_providers"]}
    services = conn.compute.get(
        "/os-services", params={"binary": "nova-compute"}, microversion=MICROVERSION
    )
    services.raise_for_status()
    for svc in services.json()["services"]:
        rp = providers.get(svc["host"])
        inv, used = cache.get(conn, rp["uuid"], rp.get("generation")) if rp else ({}, {})
        yield HostRecord(
            name=svc["host"],
            zone=svc.get("zone") or "",
            enabled=svc.get("status") == "enabled",
            up=svc.get("state") == "up",
            forced_down=bool(svc.get("forced_down")),
            disabled_reason=svc.get("disabled_reason") or "",
            total={r: float(inv[r]["total"]) for r in RESOURCES if r in inv},
            reserved={r: float(inv[r]["reserved"]) for r in RESOURCES if r in inv},
            ratio={r: float(inv[r]["allocation_ratio"]) for r in RESOURCES if r in inv},
            used={r: float(used.get(r, 0)) for r in RESOURCES},
        )


def _get(conn: Any, path: str) -> dict[str, Any]:
    resp = conn.placement.get(path)
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def _server_pages(conn: Any) -> Iterator[dict[str, Any]]:
    """Every server of every project, one page after another (``next`` links followed)."""
    url: str | None = "/servers/detail"
    params: dict[str, Any] | None = {"all_tenants": True, "limit": PAGE}
    while url is not None:
        resp = conn.compute.get(url, params=params, microversion=MICROVERSION)
        resp.raise_for_status()
        body = resp.json()
        yield from body.get("servers", [])
        nxt = [x["href"] for x in body.get("servers_links", []) if x.get("rel") == "next"]
        url, params = (nxt[0], None) if nxt and body.get("servers") else (None, None)


def _server(s: dict[str, Any]) -> ServerRecord:
    flavor = s.get("flavor") or {}
    return ServerRecord(
        id=str(s["id"]),
        name=s.get("name") or "",
        host=s.get("OS-EXT-SRV-ATTR:host") or None,
        zone=s.get("OS-EXT-AZ:availability_zone") or "",
        status=s.get("status") or "",
        task_state=s.get("OS-EXT-STS:task_state") or None,
        flavor=flavor.get("original_name") or flavor.get("name") or "",
        vcpus=int(flavor.get("vcpus") or 0),
        ram_mb=int(flavor.get("ram") or 0),
        disk_gb=int(flavor.get("disk") or 0),
    )


def _group_pages(conn: Any) -> Iterator[dict[str, Any]]:
    """Every server group of every project. Nova slices its list by ``offset`` and ``limit``
    (capped at ``[api] max_limit``) with no ``next`` link: ask from the next offset until a
    page brings nothing new (empty, or a Nova that ignores ``offset``)."""
    seen: set[str] = set()
    offset = 0
    while True:
        resp = conn.compute.get(
            "/os-server-groups",
            params={"all_projects": True, "limit": PAGE, "offset": offset},
            microversion=MICROVERSION,
        )
        resp.raise_for_status()
        page = resp.json().get("server_groups", [])
        new = [g for g in page if str(g["id"]) not in seen]
        if not new:
            return
        seen.update(str(g["id"]) for g in new)
        offset += len(page)
        yield from new


def _group(g: dict[str, Any]) -> ServerGroupRecord:
    # ``policy`` from microversion 2.64, ``policies`` (a list of one) before
    policy = g.get("policy") or next(iter(g.get("policies") or ()), "")
    return ServerGroupRecord(str(g["id"]), g.get("name") or "", policy,
                             tuple(str(m) for m in g.get("members") or ()))  # fmt: skip
