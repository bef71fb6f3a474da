"""Constraints as masks: one bit per filter, so "why not host h?" is a lookup.

:func:`reasons` is the simple, complete reference: for a set of VMs it evaluates every filter
against every host and returns ``(n, H) uint32`` with one bit set per filter that refuses
the cell; a cell is feasible when its value is 0. Strategies use faster specialised checks
on the hot path; the tests compare them against this function.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from placement.rules import Rules
from placement.state import CPU, DISK, MEM, ClusterState

__all__ = [
    "REASON_BITS",
    "Capacity",
    "describe",
    "host_totals",
    "reasons",
]

SAME_HOST = 1 << 0
MAINTENANCE = 1 << 1
DISABLED = 1 << 2
OTHER_DOMAIN = 1 << 3
PINNED = 1 << 4
HOST_RULE = 1 << 5
ANTI_AFFINITY = 1 << 6
AFFINITY = 1 << 7
ALLOC_CPU = 1 << 8
ALLOC_MEM = 1 << 9
ALLOC_DISK = 1 << 10
HEADROOM_CPU = 1 << 11
HEADROOM_MEM = 1 << 12

REASON_BITS: dict[int, str] = {
    SAME_HOST: "current host",
    MAINTENANCE: "host in maintenance",
    DISABLED: "host disabled",
    OTHER_DOMAIN: "other migration domain",
    PINNED: "VM pinned",
    HOST_RULE: "VM-host must rule",
    ANTI_AFFINITY: "anti-affinity",
    AFFINITY: "affinity",
    ALLOC_CPU: "vCPU allocation capacity",
    ALLOC_MEM: "memory allocation capacity",
    ALLOC_DISK: "disk allocation capacity",
    HEADROOM_CPU: "CPU demand above target utilisation",
    HEADROOM_MEM: "memory demand above target utilisation",
}
_ALLOC_BITS = (ALLOC_CPU, ALLOC_MEM, ALLOC_DISK)
_HEAD_BITS = (HEADROOM_CPU, HEADROOM_MEM)

# Floating point slack for capacity comparisons (sizes are integers in MiB, cores, GiB).
EPS = 1e-9

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]


@dataclass(frozen=True)
class Capacity:
    """Demand headroom: a host's measured demand must stay below ``target * physical size``.

    Attributes
    ----------
    cpu_target, mem_target : float in (0, 1]
        Target utilisation of CPU and memory (1.0 disables the headroom check).
    """

    cpu_target: float = 1.0
    mem_target: float = 1.0

    def validate(self) -> None:
        for name in ("cpu_target", "mem_target"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise ValueError(f"{name}: expected a number in (0, 1], got {v}")

    def demand_cap(self, state: ClusterState) -> FloatA:
        """(H, 2) float64: demand limit for CPU (cores) and memory (MiB)."""
        out: FloatA = state.phys[:, :2] * np.array([self.cpu_target, self.mem_target])
        return out


def host_totals(values: FloatA, placement: IntA, n_hosts: int) -> FloatA:
    """(H, R) float64: per-host sums of ``values (V, R)`` for VMs placed by ``placement``."""
    out = np.empty((n_hosts, values.shape[1]))
    for r in range(values.shape[1]):
        out[:, r] = np.bincount(placement, weights=values[:, r], minlength=n_hosts)
    return out


def reasons(
    state: ClusterState,
    vms: IntA,
    placement: IntA | None = None,
    capacity: Capacity | None = None,
) -> NDArray[np.uint32]:
    """(n, H) uint32: why each of ``vms`` may not move to each host (0 = it may).

    Capacity bits compare the host's totals under ``placement`` (default: the state's) plus
    the VM against the allocation capacity and, with ``capacity``, the demand headroom.
    """
    place = state.placement if placement is None else placement
    vms = np.asarray(vms, dtype=np.int64)
    n_h = state.n_hosts
    cur = place[vms]
    out = np.zeros((len(vms), n_h), np.uint32)
    out[np.arange(len(vms)), cur] |= SAME_HOST
    out |= np.where(state.maintenance, MAINTENANCE, 0).astype(np.uint32)[None, :]
    out |= np.where(state.disabled, DISABLED, 0).astype(np.uint32)[None, :]
    out |= np.where(state.domain[None, :] != state.domain[cur][:, None], OTHER_DOMAIN, 0).astype(
        np.uint32
    )
    out |= np.where(state.pinned[vms], PINNED, 0).astype(np.uint32)[:, None]
    out |= _rule_bits(state, vms, place)
    out |= _capacity_bits(state, vms, place, capacity)
    return out


def _rule_bits(state: ClusterState, vms: IntA, place: IntA) -> NDArray[np.uint32]:
    rules, n_h = state.rules, state.n_hosts
    out = np.where(~rules.host_allowed(vms, n_h), HOST_RULE, 0).astype(np.uint32)
    for anti, bit in ((True, ANTI_AFFINITY), (False, AFFINITY)):
        sub = _vv_subset(rules, anti)
        if sub.vv_vm.size:
            ok = sub.group_allowed(vms, place, sub.group_counts(place, n_h))
            out |= np.where(~ok, bit, 0).astype(np.uint32)
    return out


def _vv_subset(rules: Rules, anti: bool) -> Rules:
    keep = rules.vv_anti[rules.vv_group] == anti
    return replace(rules, vv_vm=rules.vv_vm[keep], vv_group=rules.vv_group[keep])


def _capacity_bits(
    state: ClusterState, vms: IntA, place: IntA, capacity: Capacity | None
) -> NDArray[np.uint32]:
    n_h = state.n_hosts
    out = np.zeros((len(vms), n_h), np.uint32)
    used = host_totals(state.alloc, place, n_h)
    for r, bit in zip((CPU, MEM, DISK), _ALLOC_BITS, strict=True):
        over = used[None, :, r] + state.alloc[vms, r][:, None] > state.alloc_cap[None, :, r] + EPS
        out |= np.where(over, bit, 0).astype(np.uint32)
    if capacity is not None:
        dem = host_totals(state.demand, place, n_h)
        cap = capacity.demand_cap(state)
        for r, bit in zip((CPU, MEM), _HEAD_BITS, strict=True):
            over = dem[None, :, r] + state.demand[vms, r][:, None] > cap[None, :, r] + EPS
            out |= np.where(over, bit, 0).astype(np.uint32)
    return out


def describe(bits: int) -> list[str]:
    """Names of the filters set in one ``reasons`` cell."""
    return [name for bit, name in REASON_BITS.items() if bits & bit]
