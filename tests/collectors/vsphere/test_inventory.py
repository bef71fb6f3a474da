"""Inventory of a 64-host / 1,000-VM simulator: complete and correct."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from collectors.vsphere import (
    Inventory,
    PerfCollector,
    collect_inventory,
    quickstats_samples,
    to_cluster_state,
)
from collectors.vsphere._sdk import vim
from placement import host_loads
from tests.collectors.vsphere.conftest import Vcsim

pytestmark = pytest.mark.vcsim


@pytest.fixture(scope="module")
def inventory(vcsim_big: Vcsim) -> Inventory:
    with vcsim_big.connect() as conn:
        return collect_inventory(conn.content, vcsim_big.url)


def test_counts(inventory: Inventory) -> None:
    assert len(inventory.datacenters) == 1
    assert len(inventory.clusters) == 4
    assert len(inventory.hosts) == 64
    assert len(inventory.vms) == 1000
    per_cluster = Counter(h.cluster for h in inventory.hosts)
    assert sorted(per_cluster) == sorted(c.id for c in inventory.clusters)
    assert set(per_cluster.values()) == {16}
    dc = next(iter(inventory.datacenters))
    assert all(c.datacenter == dc for c in inventory.clusters)
    assert all(c.resource_pool for c in inventory.clusters)
    host_ids = {h.id for h in inventory.hosts}
    assert all(v.host in host_ids for v in inventory.vms)
    assert len({v.id for v in inventory.vms}) == 1000


def test_heterogeneous(inventory: Inventory) -> None:
    assert len({(h.cores, h.memory_mib) for h in inventory.hosts}) >= 3
    assert len({(v.vcpus, v.memory_mib) for v in inventory.vms}) >= 5
    off = [v for v in inventory.vms if not v.powered_on]
    assert 0 < len(off) < 100
    assert all(v.cpu_usage_mhz == 0 for v in off)


def test_spot_check_against_direct_reads(vcsim_big: Vcsim, inventory: Inventory) -> None:
    """Ten VMs and five hosts read one by one (no property collector) agree with the batch."""
    with vcsim_big.connect() as conn:
        stub = conn.si._stub
        for v in inventory.vms[::100]:
            obj = vim.VirtualMachine(v.id, stub)
            assert obj.config.hardware.numCPU == v.vcpus
            assert obj.config.hardware.memoryMB == v.memory_mib
            assert obj.runtime.host._moId == v.host
            assert (obj.summary.quickStats.overallCpuUsage or 0) == v.cpu_usage_mhz
            assert obj.name == v.name
        for h in inventory.hosts[::13]:
            obj = vim.HostSystem(h.id, stub)
            assert obj.summary.hardware.numCpuCores == h.cores
            assert obj.hardware.memorySize // 2**20 == h.memory_mib
            assert obj.parent._moId == h.cluster


def test_state_mapping(inventory: Inventory) -> None:
    st = to_cluster_state(inventory)
    on = [v for v in inventory.vms if v.powered_on]
    assert (st.n_hosts, st.n_vms) == (64, len(on))
    assert sorted(np.unique(st.domain).tolist()) == [0, 1, 2, 3]
    # each VM's host is in the same domain as the hosts of its cluster
    hosts = {h.id: h for h in inventory.hosts}
    v = on[17]
    i = st.vm_ids.index(v.id)
    assert st.host_ids[st.placement[i]] == v.host
    assert st.alloc[i, 0] == v.vcpus and st.alloc[i, 1] == v.memory_mib
    assert st.demand[i, 0] == pytest.approx(v.cpu_usage_mhz / hosts[v.host].mhz_per_core)
    assert st.demand[i, 1] == v.mem_consumed_mib
    cpu = host_loads(st)[:, 0]
    assert cpu.max() > 1.0, "the fixture overloads some hosts"
    assert cpu.min() < 0.5
    one = to_cluster_state(inventory, [inventory.clusters[2].name])
    assert one.n_hosts == 16 and set(one.domain.tolist()) == {0}


def test_quickstats_and_perf(vcsim_big: Vcsim, inventory: Inventory) -> None:
    qs = quickstats_samples(inventory)
    on = sum(v.powered_on for v in inventory.vms)
    assert len(qs) == 2 * 64 + 3 * on
    with vcsim_big.connect() as conn:
        perf = PerfCollector(conn.content, batch=100, max_sample=2)
        ents = [("host", h.id) for h in inventory.hosts] + [
            ("vm", v.id) for v in inventory.vms[:300]
        ]
        samples = perf.query(ents)
    got = Counter((s.entity, s.counter) for s in samples)
    assert len(got) == len(ents) * 3, "every entity, all three counters"
    assert set(got.values()) == {2}, "maxSample respected"
    assert {s.unit for s in samples} == {"MHz", "MiB"}
