"""Operations a second vSphere client performs on the simulator during the tests."""

from __future__ import annotations

from typing import Any

from collectors.vsphere import Connection, Inventory, collect_inventory, to_cluster_state
from collectors.vsphere._sdk import vim
from placement import ClusterState
from tests.collectors.vsphere.conftest import Vcsim
from tests.support import wait_for


def wait_task(task: Any, timeout_s: float = 30.0) -> Any:
    done = wait_for(lambda: task.info.state in ("success", "error"), timeout_s)
    assert done, "task did not finish"
    if task.info.state == "error":
        raise task.info.error
    return task.info.result


def inventory(sim: Vcsim) -> Inventory:
    with sim.connect() as conn:
        return collect_inventory(conn.content, sim.url)


def state(sim: Vcsim, clusters: list[str] | None = None) -> ClusterState:
    return to_cluster_state(inventory(sim), clusters)


def vm(conn: Connection, vm_id: str) -> Any:
    return vim.VirtualMachine(vm_id, conn.si._stub)


def host(conn: Connection, host_id: str) -> Any:
    return vim.HostSystem(host_id, conn.si._stub)


def cluster(conn: Connection, cluster_id: str) -> Any:
    return vim.ClusterComputeResource(cluster_id, conn.si._stub)


def reconfigure_cluster(conn: Connection, cluster_id: str, spec: Any) -> None:
    wait_task(cluster(conn, cluster_id).ReconfigureComputeResource_Task(spec, modify=True))


def add_anti_affinity(conn: Connection, cluster_id: str, name: str, vms: list[str]) -> None:
    rule = vim.cluster.AntiAffinityRuleSpec(
        name=name, enabled=True, mandatory=True, vm=[vm(conn, v) for v in vms]
    )
    spec = vim.cluster.ConfigSpecEx(rulesSpec=[vim.cluster.RuleSpec(operation="add", info=rule)])
    reconfigure_cluster(conn, cluster_id, spec)


def add_vm_host_rule(
    conn: Connection, cluster_id: str, name: str, vms: list[str], hosts: list[str], mandatory: bool
) -> None:
    groups = [
        vim.cluster.GroupSpec(operation="add", info=vim.cluster.VmGroup(
            name=f"{name}-vms", vm=[vm(conn, v) for v in vms])),
        vim.cluster.GroupSpec(operation="add", info=vim.cluster.HostGroup(
            name=f"{name}-hosts", host=[host(conn, h) for h in hosts])),
    ]  # fmt: skip
    rule = vim.cluster.VmHostRuleInfo(
        name=name, enabled=True, mandatory=mandatory, vmGroupName=f"{name}-vms",
        affineHostGroupName=f"{name}-hosts",
    )  # fmt: skip
    spec = vim.cluster.ConfigSpecEx(
        groupSpec=groups, rulesSpec=[vim.cluster.RuleSpec(operation="add", info=rule)]
    )
    reconfigure_cluster(conn, cluster_id, spec)


def hosts_of(sim: Vcsim) -> dict[str, str | None]:
    """VM id -> runtime.host, read fresh from the simulator."""
    return {v.id: v.host for v in inventory(sim).vms}


def sibling(inv: Inventory, host_id: str | None) -> str:
    """Another host of the same cluster as ``host_id``."""
    cluster_of = {h.id: h.cluster for h in inv.hosts}
    return next(h.id for h in inv.hosts if h.cluster == cluster_of[host_id] and h.id != host_id)
