"""Plain records the vSphere collector produces (the event layer serialises them).

Every identifier is the managed object id (``host-21``, ``vm-57``, ``domain-c7``), unique
within one vCenter. Units: CPU in MHz (vSphere's unit; the snapshot mapping turns it into
cores), memory in MiB. ``as_dict`` gives JSON-ready dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Change",
    "ClusterRecord",
    "HostRecord",
    "Inventory",
    "MetricSample",
    "MoveResult",
    "RuleRecord",
    "VMRecord",
]


@dataclass(frozen=True)
class HostRecord:
    id: str
    name: str
    cluster: str | None
    cores: int
    mhz_per_core: int
    memory_mib: int
    cpu_usage_mhz: int
    mem_usage_mib: int
    maintenance: bool
    connected: bool
    powered_on: bool


@dataclass(frozen=True)
class VMRecord:
    id: str
    name: str
    host: str | None
    powered_on: bool
    vcpus: int
    memory_mib: int
    cpu_usage_mhz: int
    mem_consumed_mib: int
    mem_active_mib: int
    template: bool = False
    instance_uuid: str | None = None


@dataclass(frozen=True)
class RuleRecord:
    """A cluster rule. ``kind``: ``affinity``, ``anti_affinity`` (``vms`` listed) or
    ``vm_host`` (``vms`` from ``vm_group``, ``hosts`` from ``host_group``; ``anti`` for an
    anti-affine host group; ``mandatory``: must rather than should)."""

    name: str
    kind: str
    enabled: bool
    mandatory: bool
    vms: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    anti: bool = False
    vm_group: str | None = None
    host_group: str | None = None


@dataclass(frozen=True)
class ClusterRecord:
    id: str
    name: str
    datacenter: str | None
    resource_pool: str | None
    drs_enabled: bool
    drs_behavior: str | None
    rules: tuple[RuleRecord, ...] = ()
    vm_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    host_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    manual_vms: tuple[str, ...] = ()  # per-VM DRS override: disabled or manual


@dataclass(frozen=True)
class Inventory:
    """One full collection of a vCenter."""

    source: str
    collected_at: float  # Unix seconds
    datacenters: dict[str, str]  # id -> name
    clusters: tuple[ClusterRecord, ...]
    hosts: tuple[HostRecord, ...]
    vms: tuple[VMRecord, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> tuple[object, ...]:
        """Everything but the collection time: equal fingerprints, same inventory."""
        return (self.datacenters, self.clusters, self.hosts, self.vms)

    def cluster(self, name_or_id: str) -> ClusterRecord:
        for c in self.clusters:
            if name_or_id in (c.id, c.name):
                return c
        names = ", ".join(sorted(c.name for c in self.clusters)) or "none"
        raise KeyError(f"no cluster {name_or_id!r} (clusters: {names})")


@dataclass(frozen=True)
class MetricSample:
    """One value of one counter of one entity. ``source``: ``quickstats`` or ``perf``."""

    entity: str
    kind: str  # "host" or "vm"
    counter: str  # e.g. "cpu.usagemhz.average", "mem.consumed.average"
    ts: float  # Unix seconds
    value: float
    unit: str  # "MHz" or "MiB"
    source: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Change:
    """One property change seen by the update watcher.

    ``field``: ``name``, ``power_state``, ``host``, ``maintenance``, ``added`` or
    ``removed``; ``value`` is the new value (a host id for ``host``, a bool for
    ``maintenance``, the power state string for ``power_state``).
    """

    kind: str  # "vm" or "host"
    id: str
    field: str
    value: object
    ts: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MoveResult:
    """Outcome of one relocation. ``fault`` is the vSphere fault's type name on failure."""

    vm: str
    source: str | None
    destination: str
    ok: bool
    host_before: str | None
    host_after: str | None
    fault: str | None = None
    message: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
