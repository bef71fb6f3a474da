"""Metrics as the format document defines them, computed by hand on small clusters."""

from __future__ import annotations

import numpy as np
import pytest

from placement import metrics
from placement.objectives import lower_bound_hosts
from tests.placement.clusters import build


def test_metrics_by_hand() -> None:
    # host 0: 8 cores, VMs use 2 + 2 cores -> 0.5; host 1: 16 cores, 4 cores -> 0.25; host 2 empty
    state = build(
        [(8, 32768), (16, 32768), (8, 32768)],
        [(4, 16384, 0.5, 8192, 0), (4, 8192, 0.5, 8192, 0), (8, 8192, 0.5, 16384, 1)],
    )
    m = metrics(state)
    loads = np.array([0.5, 0.25, 0.0])
    assert m.cpu_load_sd == pytest.approx(loads.std())
    assert m.cpu_load_sd_active == pytest.approx(np.array([0.5, 0.25]).std())
    assert m.cpu_load_max == pytest.approx(0.5)
    assert m.ram_load_sd == pytest.approx(np.array([0.5, 0.5, 0.0]).std())
    assert m.hosts_empty == 1
    assert m.capacity_violations == 0


def test_capacity_violation_counts_hosts() -> None:
    state = build([(4, 32768), (4, 32768)], [(4, 8192, 0.1, 10, 0), (2, 8192, 0.1, 10, 0)])
    assert metrics(state).capacity_violations == 1


@pytest.mark.parametrize(
    ("hosts", "vm_mem", "expect"),
    [
        ([65536, 32768, 32768], [30000, 30000], 1),
        ([65536, 32768, 32768], [40000, 40000], 2),
        ([65536, 32768, 32768], [50000, 50000, 20000], 3),
    ],
    ids=["fits-largest", "needs-two", "needs-all"],
)
def test_lower_bound_takes_largest_first(hosts: list[int], vm_mem: list[int], expect: int) -> None:
    state = build([(64, m) for m in hosts], [(1, m, 0.1, 10, 0) for m in vm_mem])
    assert lower_bound_hosts(state) == expect
