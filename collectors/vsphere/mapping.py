"""Inventory records -> :class:`placement.ClusterState` (one migration domain per cluster).

Units follow the placement core: CPU in cores (host: physical cores; VM: vCPUs allocated,
cores busy = quickStats MHz / MHz per core of the VM's current host), memory in MiB (VM
demand = consumed memory, ``hostMemoryUsage``), disk 0 (storage is not balanced here).

What goes in: hosts of the selected clusters (maintenance -> ``maintenance``; disconnected
or powered off -> ``disabled``) and their powered-on, non-template VMs. Powered-off VMs
consume nothing and DRS does not migrate them, so they are left out, and left out of the
rules too. VMs with a per-VM DRS override (disabled or manual) are ``pinned``.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass

import numpy as np

from collectors.vsphere.records import ClusterRecord, HostRecord, Inventory, VMRecord
from placement import ClusterState, Rules, make_state
from placement.rules import MUST, MUST_NOT, SHOULD, SHOULD_NOT

__all__ = ["MappedRule", "MappingOptions", "cluster_rules", "to_cluster_state"]


@dataclass(frozen=True)
class MappingOptions:
    """Allocation ratios: vCPUs per core and memory over-commit a host may carry."""

    cpu_ratio: float = 4.0
    mem_ratio: float = 1.0

    def validate(self) -> None:
        for name in ("cpu_ratio", "mem_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a number > 0, got {getattr(self, name)}")


def to_cluster_state(
    inv: Inventory, clusters: list[str] | None = None, options: MappingOptions | None = None
) -> ClusterState:
    """The hosts and VMs of ``clusters`` (names or ids; default all) as one state.

    Host ids are the hosts' managed object ids, VM ids the VMs'; ``domain`` numbers the
    clusters in the order of ``inv.clusters``.
    """
    opts = options or MappingOptions()
    opts.validate()
    chosen = inv.clusters if clusters is None else tuple(inv.cluster(c) for c in clusters)
    domain_of = {c.id: d for d, c in enumerate(chosen)}
    hosts = [h for h in inv.hosts if h.cluster in domain_of]
    h_index = {h.id: i for i, h in enumerate(hosts)}
    vms = [v for v in inv.vms if v.powered_on and not v.template and v.host in h_index]
    v_index = {v.id: i for i, v in enumerate(vms)}
    place = np.array([h_index[v.host] for v in vms if v.host is not None], dtype=np.int64)
    phys = np.array([[h.cores, h.memory_mib, 0] for h in hosts], dtype=np.float64).reshape(-1, 3)
    cap = phys * np.array([opts.cpu_ratio, opts.mem_ratio, 1.0])
    manual = {v for c in chosen for v in c.manual_vms}
    return make_state(
        [h.id for h in hosts],
        [v.id for v in vms],
        phys,
        np.array([[v.vcpus, v.memory_mib, 0] for v in vms], dtype=np.float64).reshape(-1, 3),
        _demand(vms, hosts, place),
        place,
        alloc_cap=cap,
        domain=np.array([domain_of[h.cluster] for h in hosts if h.cluster], dtype=np.int64),
        maintenance=np.array([h.maintenance for h in hosts], dtype=bool),
        disabled=np.array([not (h.connected and h.powered_on) for h in hosts], dtype=bool),
        pinned=np.array([v.id in manual for v in vms], dtype=bool),
        rules=_rules(chosen, h_index, v_index),
    )


def _demand(vms: list[VMRecord], hosts: list[HostRecord], place: np.ndarray) -> np.ndarray:
    mhz = np.array([max(h.mhz_per_core, 1) for h in hosts], dtype=np.float64)
    usage = np.array([v.cpu_usage_mhz for v in vms], dtype=np.float64)
    vcpus = np.array([v.vcpus for v in vms], dtype=np.float64)
    cores = np.minimum(usage / mhz[place] if len(vms) else usage, vcpus)
    mem = np.array([v.mem_consumed_mib for v in vms], dtype=np.float64)
    return np.stack([cores, mem, np.zeros(len(vms))], axis=1)


@dataclass(frozen=True)
class MappedRule:
    """One enabled rule restricted to the chosen VMs and hosts, in the snapshot's terms.

    ``type``: ``affinity``, ``anti_affinity`` or ``vm_host``; ``kind`` (``vm_host`` only):
    one of ``placement.rules.MUST``, ``MUST_NOT``, ``SHOULD``, ``SHOULD_NOT``.
    """

    name: str
    type: str
    kind: int
    vms: list[str]
    hosts: list[str]


def cluster_rules(
    c: ClusterRecord, vm_ok: Container[str], host_ok: Container[str]
) -> Iterator[MappedRule]:
    """The enabled rules of ``c`` over the VMs in ``vm_ok`` and the hosts in ``host_ok``.

    A VM-VM rule left with fewer than two VMs, or a VM-host rule with no VM, constrains
    nothing and is dropped. Rule names are prefixed with the cluster's name.
    """
    for r in c.rules:
        if not r.enabled:
            continue
        members = [v for v in r.vms if v in vm_ok]
        if r.kind in ("affinity", "anti_affinity"):
            if len(members) >= 2:  # a group of one constrains nothing
                yield MappedRule(f"{c.name}/{r.name}", r.kind, MUST_NOT, members, [])
        elif members:
            kind = (MUST_NOT if r.anti else MUST) if r.mandatory else (
                SHOULD_NOT if r.anti else SHOULD)  # fmt: skip
            hosts = [h for h in r.hosts if h in host_ok]
            yield MappedRule(f"{c.name}/{r.name}", "vm_host", kind, members, hosts)


def _rules(
    clusters: tuple[ClusterRecord, ...], h_index: dict[str, int], v_index: dict[str, int]
) -> Rules:
    vv: list[tuple[str, bool, list[int]]] = []
    vh: list[tuple[str, int, list[int], list[int]]] = []
    for c in clusters:
        for r in cluster_rules(c, v_index, h_index):
            members = [v_index[v] for v in r.vms]
            if r.type == "vm_host":
                vh.append((r.name, r.kind, members, [h_index[h] for h in r.hosts]))
            else:
                vv.append((r.name, r.type == "anti_affinity", members))
    return Rules.build(len(h_index), vv=vv, vh=vh)
