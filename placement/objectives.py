"""Objectives as scores: host loads, imbalance, and the metrics of ``drs-peer-cluster/1``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.constraints import EPS, host_totals
from placement.state import CPU, MEM, ClusterState

__all__ = ["Metrics", "host_loads", "imbalance", "lower_bound_hosts", "metrics"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]


def host_loads(state: ClusterState, placement: IntA | None = None) -> FloatA:
    """(H, 2) float64: CPU and memory demand of each host over its physical size."""
    place = state.placement if placement is None else placement
    dem = host_totals(state.demand[:, :2], place, state.n_hosts)
    return dem / np.maximum(state.phys[:, :2], EPS)


def imbalance(loads: FloatA, weights: tuple[float, float], hosts: NDArray[np.bool_]) -> float:
    """Weighted sum of the population standard deviations of CPU and memory load over ``hosts``."""
    if not hosts.any():
        return 0.0
    sd = loads[hosts].std(axis=0)
    return float(weights[0] * sd[0] + weights[1] * sd[1])


@dataclass(frozen=True)
class Metrics:
    """The numbers every engine is judged by (see the format document)."""

    cpu_load_sd: float
    cpu_load_sd_active: float
    cpu_load_max: float
    ram_load_sd: float
    ram_load_max: float
    hosts_empty: int
    capacity_violations: int
    lower_bound_hosts: int

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def metrics(state: ClusterState, placement: IntA | None = None) -> Metrics:
    place = state.placement if placement is None else placement
    loads = host_loads(state, place)
    count = np.bincount(place, minlength=state.n_hosts)
    active = count > 0
    used = host_totals(state.alloc, place, state.n_hosts)
    over = (used > state.alloc_cap + EPS).any(axis=1)
    cpu = loads[:, CPU]
    return Metrics(
        cpu_load_sd=float(cpu.std()) if cpu.size else 0.0,
        cpu_load_sd_active=float(cpu[active].std()) if active.any() else 0.0,
        cpu_load_max=float(cpu.max()) if cpu.size else 0.0,
        ram_load_sd=float(loads[:, MEM].std()) if cpu.size else 0.0,
        ram_load_max=float(loads[:, MEM].max()) if cpu.size else 0.0,
        hosts_empty=int((~active).sum()),
        capacity_violations=int(over.sum()),
        lower_bound_hosts=lower_bound_hosts(state),
    )


def lower_bound_hosts(state: ClusterState) -> int:
    """Fewest hosts any packing needs: per dimension, largest capacities first until the
    total allocation is covered; the maximum over dimensions."""
    need = 0
    for r in range(state.alloc.shape[1]):
        total = state.alloc[:, r].sum()
        if total <= 0:
            continue
        caps = np.sort(state.alloc_cap[:, r])[::-1]
        k = int(np.searchsorted(np.cumsum(caps), total - EPS)) + 1
        need = max(need, min(k, state.n_hosts))
    return need
