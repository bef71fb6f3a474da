"""Inventory: one ContainerView and one batched RetrievePropertiesEx over it.

Every datacenter, folder, cluster, host and VM under the root folder comes back in a single
property collection (paged with ContinueRetrievePropertiesEx when vCenter pages), then is
turned into plain records (:mod:`collectors.vsphere.records`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from collectors.vsphere._sdk import vim, vmodl
from collectors.vsphere.records import (
    ClusterRecord,
    HostRecord,
    Inventory,
    RuleRecord,
    VMRecord,
)

__all__ = ["PROPERTIES", "collect_inventory", "retrieve", "view_filter"]

MIB = 1024 * 1024

PROPERTIES: dict[Any, list[str]] = {
    vim.Datacenter: ["name", "parent"],
    vim.Folder: ["name", "parent"],
    vim.ClusterComputeResource: ["name", "parent", "resourcePool", "configurationEx"],
    vim.HostSystem: [
        "name",
        "parent",
        "summary.hardware.numCpuCores",
        "summary.hardware.cpuMhz",
        "summary.hardware.memorySize",
        "summary.quickStats.overallCpuUsage",
        "summary.quickStats.overallMemoryUsage",
        "runtime.inMaintenanceMode",
        "runtime.connectionState",
        "runtime.powerState",
    ],
    vim.VirtualMachine: [
        "name",
        "runtime.host",
        "runtime.powerState",
        "summary.config.numCpu",
        "summary.config.memorySizeMB",
        "summary.config.template",
        "summary.config.instanceUuid",
        "summary.quickStats.overallCpuUsage",
        "summary.quickStats.hostMemoryUsage",
        "summary.quickStats.guestMemoryUsage",
    ],
}

Props = dict[str, Any]


def view_filter(view: Any, properties: dict[Any, list[str]]) -> Any:
    traverse = vmodl.query.PropertyCollector.TraversalSpec(
        name="view", path="view", skip=False, type=vim.view.ContainerView
    )
    obj = vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traverse])
    props = [
        vmodl.query.PropertyCollector.PropertySpec(type=t, pathSet=paths, all=False)
        for t, paths in properties.items()
    ]
    return vmodl.query.PropertyCollector.FilterSpec(objectSet=[obj], propSet=props)


def retrieve(content: Any, properties: dict[Any, list[str]]) -> Iterator[tuple[Any, Props]]:
    """(managed object, {path: value}) for every object of the given types, in one batch."""
    view = content.viewManager.CreateContainerView(content.rootFolder, list(properties), True)
    try:
        pc = content.propertyCollector
        spec = view_filter(view, properties)
        result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        while result is not None:
            for oc in result.objects:
                yield oc.obj, {p.name: p.val for p in oc.propSet}
            token = result.token
            result = pc.ContinueRetrievePropertiesEx(token) if token else None
    finally:
        view.Destroy()


def _id(obj: Any) -> str | None:
    return None if obj is None else str(obj._moId)


def collect_inventory(content: Any, source: str = "") -> Inventory:
    """Collect datacenters, clusters, hosts and VMs (with rules and groups) in one batch."""
    ts = time.time()
    by_type: dict[type, list[tuple[Any, Props]]] = {t: [] for t in PROPERTIES}
    parents: dict[str, str | None] = {}
    for obj, props in retrieve(content, PROPERTIES):
        parents[str(obj._moId)] = _id(props.get("parent"))
        for t in PROPERTIES:
            if isinstance(obj, t):
                by_type[t].append((obj, props))
                break
    dcs = {str(o._moId): str(p.get("name", "")) for o, p in by_type[vim.Datacenter]}
    clusters = [
        _cluster(o, p, _ancestor(parents, _id(o), dcs))
        for o, p in by_type[vim.ClusterComputeResource]
    ]
    cluster_ids = {c.id for c in clusters}
    hosts = [_host(o, p, cluster_ids) for o, p in by_type[vim.HostSystem]]
    vms = [_vm(o, p) for o, p in by_type[vim.VirtualMachine]]
    key = _natural
    return Inventory(
        source=source,
        collected_at=ts,
        datacenters=dcs,
        clusters=tuple(sorted(clusters, key=lambda c: key(c.id))),
        hosts=tuple(sorted(hosts, key=lambda h: key(h.id))),
        vms=tuple(sorted(vms, key=lambda v: key(v.id))),
    )


def _natural(moid: str) -> tuple[str, int, str]:
    """Sort ``vm-9`` before ``vm-10``."""
    head, _, tail = moid.rpartition("-")
    return (head, int(tail), "") if tail.isdigit() else (moid, -1, moid)


def _ancestor(parents: dict[str, str | None], oid: str | None, dcs: dict[str, str]) -> str | None:
    seen = 0
    while oid is not None and oid not in dcs and seen < 64:
        oid = parents.get(oid)
        seen += 1
    return oid if oid in dcs else None


def _host(obj: Any, p: Props, clusters: set[str]) -> HostRecord:
    parent = _id(p.get("parent"))
    return HostRecord(
        id=str(obj._moId),
        name=str(p.get("name", "")),
        cluster=parent if parent in clusters else None,
        cores=int(p.get("summary.hardware.numCpuCores") or 0),
        mhz_per_core=int(p.get("summary.hardware.cpuMhz") or 0),
        memory_mib=int(p.get("summary.hardware.memorySize") or 0) // MIB,
        cpu_usage_mhz=int(p.get("summary.quickStats.overallCpuUsage") or 0),
        mem_usage_mib=int(p.get("summary.quickStats.overallMemoryUsage") or 0),
        maintenance=bool(p.get("runtime.inMaintenanceMode", False)),
        connected=p.get("runtime.connectionState") == "connected",
        powered_on=p.get("runtime.powerState") == "poweredOn",
    )


def _vm(obj: Any, p: Props) -> VMRecord:
    return VMRecord(
        id=str(obj._moId),
        name=str(p.get("name", "")),
        host=_id(p.get("runtime.host")),
        powered_on=p.get("runtime.powerState") == "poweredOn",
        vcpus=int(p.get("summary.config.numCpu") or 0),
        memory_mib=int(p.get("summary.config.memorySizeMB") or 0),
        cpu_usage_mhz=int(p.get("summary.quickStats.overallCpuUsage") or 0),
        mem_consumed_mib=int(p.get("summary.quickStats.hostMemoryUsage") or 0),
        mem_active_mib=int(p.get("summary.quickStats.guestMemoryUsage") or 0),
        template=bool(p.get("summary.config.template", False)),
        instance_uuid=p.get("summary.config.instanceUuid"),
    )


def _cluster(obj: Any, p: Props, datacenter: str | None) -> ClusterRecord:
    cfg = p.get("configurationEx")
    drs = getattr(cfg, "drsConfig", None)
    vm_groups: dict[str, tuple[str, ...]] = {}
    host_groups: dict[str, tuple[str, ...]] = {}
    for g in getattr(cfg, "group", None) or []:
        if isinstance(g, vim.cluster.VmGroup):
            vm_groups[g.name] = tuple(str(v._moId) for v in g.vm or [])
        elif isinstance(g, vim.cluster.HostGroup):
            host_groups[g.name] = tuple(str(h._moId) for h in g.host or [])
    rules = tuple(
        r for r in (_rule(x, vm_groups, host_groups) for x in getattr(cfg, "rule", None) or [])
        if r is not None
    )  # fmt: skip
    manual = tuple(
        str(c.key._moId)
        for c in getattr(cfg, "drsVmConfig", None) or []
        if c.key is not None and (c.enabled is False or c.behavior == "manual")
    )
    return ClusterRecord(
        id=str(obj._moId),
        name=str(p.get("name", "")),
        datacenter=datacenter,
        resource_pool=_id(p.get("resourcePool")),
        drs_enabled=bool(getattr(drs, "enabled", False)),
        drs_behavior=getattr(drs, "defaultVmBehavior", None),
        rules=rules,
        vm_groups=vm_groups,
        host_groups=host_groups,
        manual_vms=manual,
    )


def _rule(
    r: Any, vm_groups: dict[str, tuple[str, ...]], host_groups: dict[str, tuple[str, ...]]
) -> RuleRecord | None:
    name, enabled, mandatory = str(r.name), r.enabled is not False, bool(r.mandatory)
    if isinstance(r, vim.cluster.AntiAffinityRuleSpec | vim.cluster.AffinityRuleSpec):
        kind = "anti_affinity" if isinstance(r, vim.cluster.AntiAffinityRuleSpec) else "affinity"
        vms = tuple(str(v._moId) for v in r.vm or [])
        return RuleRecord(name, kind, enabled, mandatory, vms=vms)
    if isinstance(r, vim.cluster.VmHostRuleInfo):
        anti = r.affineHostGroupName is None
        hg = r.antiAffineHostGroupName if anti else r.affineHostGroupName
        return RuleRecord(
            name, "vm_host", enabled, mandatory,
            vms=vm_groups.get(r.vmGroupName, ()), hosts=host_groups.get(hg, ()),
            anti=anti, vm_group=r.vmGroupName, host_group=hg,
        )  # fmt: skip
    return None  # other rule types (dependency rules) do not constrain placement
