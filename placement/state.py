"""Cluster state as structure-of-arrays.

One :class:`ClusterState` describes one or more migration domains at one instant. It holds
no per-VM objects: every quantity is an array indexed by host ``h`` (``H`` hosts), VM ``v``
(``V`` VMs) and resource ``r`` (``R = 3``: CPU in cores, memory in MiB, disk in GiB).

Arrays are validated once, when the state is built (:func:`make_state`); the strategies
trust them afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from placement.rules import Rules

__all__ = ["CPU", "DISK", "MEM", "RESOURCES", "ClusterState", "StateError", "make_state"]

RESOURCES = ("cpu", "mem", "disk")
CPU, MEM, DISK = 0, 1, 2

# Largest quantity accepted in any array (cores, MiB, GiB, MIPS, watts): far above anything
# physical, and low enough that sums over any number of VMs stay finite. Boundaries (the
# snapshot reader, the event decoder) enforce tighter, physical limits with friendlier
# messages; this only keeps inf and nan out of the core whoever builds the state.
MAX_VALUE = 1e15

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]
BoolA = NDArray[np.bool_]


class StateError(ValueError):
    """Arrays given to :func:`make_state` are inconsistent; the message names the field."""


@dataclass(frozen=True, eq=False)
class ClusterState:
    """A snapshot of hosts and VMs.

    Attributes
    ----------
    host_ids : tuple of str, length H
    vm_ids : tuple of str, length V
    phys : (H, R) float64
        Physical size: cores, MiB, GiB. Loads are normalised by it.
    alloc_cap : (H, R) float64
        Allocation capacity ``(size - reserved) * over-commit ratio``.
    alloc : (V, R) float64
        Configured VM size: vCPUs, MiB, GiB.
    demand : (V, R) float64
        Measured use: cores busy, MiB resident, GiB (disk demand equals allocation).
    placement : (V,) int64
        Host index of each VM.
    domain : (H,) int64
        Migration domain of each host; a VM moves only inside its host's domain.
    maintenance : (H,) bool
        Host must be emptied and receives nothing.
    disabled : (H,) bool
        Host receives nothing (powered off, disabled in the scheduler) but need not be emptied.
    pinned : (V,) bool
        VM never moves.
    rules : Rules
        VM-VM and VM-host rules.
    power : (H, 11) float64 or None
        Watts at 0 %, 10 %, ... 100 % CPU load (SPECpower style), when known.
    """

    host_ids: tuple[str, ...]
    vm_ids: tuple[str, ...]
    phys: FloatA
    alloc_cap: FloatA
    alloc: FloatA
    demand: FloatA
    placement: IntA
    domain: IntA
    maintenance: BoolA
    disabled: BoolA
    pinned: BoolA
    rules: Rules = field(default_factory=Rules.empty)
    power: FloatA | None = None

    @property
    def n_hosts(self) -> int:
        return len(self.host_ids)

    @property
    def n_vms(self) -> int:
        return len(self.vm_ids)

    @property
    def host_ok(self) -> BoolA:
        """(H,) bool: the host may receive VMs."""
        return ~(self.maintenance | self.disabled)

    def with_maintenance(self, maintenance: BoolA) -> ClusterState:
        return _replace(self, maintenance=np.asarray(maintenance, dtype=bool))


def _replace(state: ClusterState, **changes: object) -> ClusterState:
    return replace(state, **changes)  # type: ignore[arg-type]


def make_state(
    host_ids: tuple[str, ...] | list[str],
    vm_ids: tuple[str, ...] | list[str],
    phys: object,
    alloc: object,
    demand: object,
    placement: object,
    *,
    alloc_cap: object | None = None,
    domain: object | None = None,
    maintenance: object | None = None,
    disabled: object | None = None,
    pinned: object | None = None,
    rules: Rules | None = None,
    power: object | None = None,
) -> ClusterState:
    """Build and validate a :class:`ClusterState`.

    Raises
    ------
    StateError
        Naming the field and, where it applies, the host or VM index that is wrong.
    """
    hids, vids = tuple(host_ids), tuple(vm_ids)
    n_h, n_v = len(hids), len(vids)
    phys_a = _floats("phys", phys, (n_h, 3))
    st = ClusterState(
        host_ids=hids,
        vm_ids=vids,
        phys=phys_a,
        alloc_cap=phys_a.copy() if alloc_cap is None else _floats("alloc_cap", alloc_cap, (n_h, 3)),
        alloc=_floats("alloc", alloc, (n_v, 3)),
        demand=_floats("demand", demand, (n_v, 3)),
        placement=_ints("placement", placement, n_v, n_h),
        domain=np.zeros(n_h, np.int64) if domain is None else _ints("domain", domain, n_h, None),
        maintenance=_bools("maintenance", maintenance, n_h),
        disabled=_bools("disabled", disabled, n_h),
        pinned=_bools("pinned", pinned, n_v),
        rules=Rules.empty(n_h) if rules is None else rules,
        power=None if power is None else _floats("power", power, (n_h, 11)),
    )
    _check_ids("host_ids", hids)
    _check_ids("vm_ids", vids)
    st.rules.validate(n_v, n_h)
    return st


def _floats(name: str, value: object, shape: tuple[int, int]) -> FloatA:
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape:
        raise StateError(f"{name}: expected shape {shape}, got {a.shape}")
    bad = ~((a >= 0) & (a <= MAX_VALUE))  # nan fails both comparisons
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise StateError(
            f"{name}[{i}, {j}]: expected a finite number in 0..{MAX_VALUE:g}, got {a[i, j]}"
        )
    return a


def _ints(name: str, value: object, n: int, upper: int | None) -> IntA:
    a = np.asarray(value)
    if a.shape != (n,):
        raise StateError(f"{name}: expected shape ({n},), got {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise StateError(f"{name}: expected integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    bad = (a < 0) if upper is None else (a < 0) | (a >= upper)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StateError(f"{name}[{i}]: {a[i]} is not a valid index (0..{upper})")
    return a


def _bools(name: str, value: object, n: int) -> BoolA:
    if value is None:
        return np.zeros(n, dtype=bool)
    a = np.asarray(value, dtype=bool)
    if a.shape != (n,):
        raise StateError(f"{name}: expected shape ({n},), got {a.shape}")
    return a


def _check_ids(name: str, ids: tuple[str, ...]) -> None:
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise StateError(f"{name}: duplicate id {dup!r}")
