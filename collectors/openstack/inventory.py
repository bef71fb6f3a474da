"""Read one cloud's compute picture: services, Placement capacity, servers, server groups.

Plain records out (no events, no arrays). Capacity and allocation ratios come from
Placement (``/resource_providers/{id}/inventories`` and ``/usages``): the hypervisor
statistics of the compute API are gone from microversion 2.88. Servers are listed page by
page following Nova's ``next`` links, so there is no 1,000-server ceiling, and read from the
JSON directly: building the SDK's resource objects cost about 10 ms a server, over three
minutes for 20,000 (``bench/openstack.py``).

A compute service is matched to its Placement resource provider through the hypervisors it
runs (``/os-hypervisors/detail`` from microversion 2.53: the hypervisor's id is its compute
node's UUID, which is the provider's UUID, and ``service.host`` names the service), then by
name: a libvirt provider is named after the hypervisor hostname, often an FQDN, while the
service's host may be the short name. A service left with no provider has no capacity to
plan with: it is listed in :attr:`Inventory.unmatched` and logged once per collector, not
dropped in silence. Host aggregates are read too (``/os-aggregates``): with the zone they
make a host's migration domain (:mod:`collectors.openstack.mapping`). Server groups are
paged (by offset: Nova answers at most its ``[api] max_limit`` groups per request and gives
no ``next`` link; the SDK's listing stopped at the first page).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HostRecord", "Inventory", "ServerGroupRecord", "ServerRecord", "collect_inventory"]

RESOURCES = ("VCPU", "MEMORY_MB", "DISK_GB")
PAGE = 1000  # items asked per page (Nova answers at most its [api] max_limit)
MICROVERSION = "2.73"  # the flavor embedded in the server (2.47)
# hypervisor ids are compute node UUIDs from 2.53; 2.88 would make Nova ask every compute
# service its uptime (one RPC per hypervisor) for the detail listing
HYPERVISORS = "2.53"

log = logging.getLogger(__name__)


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
    provider: str = ""  # the Placement resource provider's UUID; "" when none was found
    aggregates: tuple[str, ...] = ()  # host aggregates other than availability zones, sorted


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

    @property
    def unmatched(self) -> tuple[str, ...]:
        """Compute services with no Placement resource provider (left out of the plan)."""
        return tuple(h.name for h in self.hosts if not h.provider)


class ProviderCache:
    """Placement inventories and usages by resource provider, kept while the provider's
    generation stays the same (Placement bumps it on every inventory or allocation change):
    a steady cycle then asks Placement one listing, not two calls per host.
    ``fetched`` counts the providers read; ``warned`` holds the services already reported
    without a provider (each is logged once)."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {}
        self.fetched = 0
        self.warned: set[str] = set()

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
    servers = _link_pages(conn, "/servers/detail", "servers", {"all_tenants": True}, MICROVERSION)
    return Inventory(
        source=source,
        collected_at=time.time(),
        hosts=tuple(_hosts(conn, source, cache or ProviderCache())),
        servers=tuple(_server(s) for s in servers),  # listed after the hosts: lazy
        groups=tuple(_group(g) for g in _group_pages(conn)),
    )


def _hosts(conn: Any, source: str, cache: ProviderCache) -> Iterable[HostRecord]:
    providers, aggregates = _providers(conn), _aggregates(conn)
    services = conn.compute.get(
        "/os-services", params={"binary": "nova-compute"}, microversion=MICROVERSION
    )
    services.raise_for_status()
    for svc in services.json()["services"]:
        rp = providers.get(svc["host"])
        if rp is None and svc["host"] not in cache.warned:
            cache.warned.add(svc["host"])
            log.warning(
                "cloud %s: compute service %s has no Placement resource provider (none of its"
                " hypervisors' ids, none by its name): left out with its servers",
                source, svc["host"],
            )  # fmt: skip
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
            provider=rp["uuid"] if rp else "",
            aggregates=aggregates.get(svc["host"], ()),
        )


def _aggregates(conn: Any) -> dict[str, tuple[str, ...]]:
    """Host -> names of its aggregates, sorted; an aggregate that defines an availability
    zone is left out (the zone says it). Nova lists every aggregate in one answer."""
    resp = conn.compute.get("/os-aggregates", microversion=MICROVERSION)
    resp.raise_for_status()
    out: dict[str, list[str]] = {}
    for agg in resp.json().get("aggregates", []):
        if (agg.get("metadata") or {}).get("availability_zone"):
            continue
        for host in agg.get("hosts") or ():
            out.setdefault(host, []).append(str(agg.get("name") or agg.get("id")))
    return {h: tuple(sorted(names)) for h, names in out.items()}


def _providers(conn: Any) -> dict[str, dict[str, Any]]:
    """Resource provider by compute service host: through the service's hypervisors (a
    hypervisor's id is its provider's UUID), else the provider named after the host."""
    listed = _get(conn, "/resource_providers")["resource_providers"]
    by_uuid = {rp["uuid"]: rp for rp in listed}
    out = {rp["name"]: rp for rp in listed}
    linked: dict[str, dict[str, Any]] = {}
    for hv in _link_pages(conn, "/os-hypervisors/detail", "hypervisors", {}, HYPERVISORS):
        host = (hv.get("service") or {}).get("host")
        rp = by_uuid.get(str(hv.get("id"))) or out.get(hv.get("hypervisor_hostname") or "")
        if host and rp is not None:
            linked.setdefault(host, rp)  # a host of several nodes (ironic): its first
    return out | linked


def _get(conn: Any, path: str) -> dict[str, Any]:
    resp = conn.placement.get(path)
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def _link_pages(
    conn: Any, path: str, key: str, params: dict[str, Any], microversion: str
) -> Iterator[dict[str, Any]]:
    """Every item of a Nova listing that pages with ``{key}_links`` (servers,
    hypervisors), one page after another (``next`` links followed)."""
    url: str | None = path
    query: dict[str, Any] | None = {**params, "limit": PAGE}
    while url is not None:
        resp = conn.compute.get(url, params=query, microversion=microversion)
        resp.raise_for_status()
        body = resp.json()
        yield from body.get(key, [])
        nxt = [x["href"] for x in body.get(f"{key}_links", []) if x.get("rel") == "next"]
        url, query = (nxt[0], None) if nxt and body.get(key) else (None, None)


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
