"""The simulated data centre: host types, VM types, and the paper's setup (CloudSim 3.0.3).

Values from ``examples.power.Constants`` (see shared/reference/cloudsim-setup.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collectors.replay.traces import Trace

__all__ = [
    "PAPER_HOSTS",
    "PAPER_VMS",
    "Datacenter",
    "HostType",
    "VmType",
    "World",
    "build_world",
    "host_layout",
]

FloatA = NDArray[np.float64]


@dataclass(frozen=True)
class HostType:
    """A server model: cores x MIPS per core, memory, network, SPECpower curve (11 points, W)."""

    name: str
    cores: int
    core_mips: float
    ram_mb: float
    bw: float
    power: tuple[float, ...]


@dataclass(frozen=True)
class VmType:
    """A single-core VM type."""

    name: str
    mips: float
    ram_mb: float
    bw: float = 100_000.0


G4 = HostType(
    "HP ProLiant ML110 G4", 2, 1860.0, 4096.0, 1_000_000.0,
    (86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117),
)  # fmt: skip
G5 = HostType(
    "HP ProLiant ML110 G5", 2, 2660.0, 4096.0, 1_000_000.0,
    (93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135),
)  # fmt: skip
PAPER_HOSTS = (G4, G5)
PAPER_VMS = (
    VmType("High-CPU Medium", 2500.0, 870.0),
    VmType("Extra Large", 2000.0, 1740.0),
    VmType("Small", 1000.0, 1740.0),
    VmType("Micro", 500.0, 613.0),
)


@dataclass(frozen=True)
class Datacenter:
    """``n_hosts`` hosts, host ``i`` of type ``host_types[i % len(host_types)]``.

    VMs get types in contiguous equal blocks in trace order (CloudSim: VM ``i`` has type
    ``i // ceil(V / len(vm_types))``).
    """

    n_hosts: int = 800
    host_types: tuple[HostType, ...] = PAPER_HOSTS
    # hosts of each type in one block per type (a described data centre); empty: the types
    # alternate host by host (the paper). Fewer or more hosts cut or repeat the pattern.
    host_counts: tuple[int, ...] = ()
    vm_types: tuple[VmType, ...] = PAPER_VMS
    interval: float = 300.0
    history: int = 30
    start: float = 0.1  # CloudSim submits the cloudlets at 0.1 s; decisions at 300 k + 0.1
    # CloudSim 3.0.3 checks memory and network only when a VM is created: afterwards the
    # VM's requested RAM/BW come from a null utilisation model (0), so migrations ignore
    # them. True checks each VM's full memory and bandwidth at every placement.
    memory_aware: bool = False
    # cap each VM's request at one core's MIPS (CloudSim's single-vCPU VMs); off for data
    # centres whose VMs have several vCPUs
    per_core_cap: bool = True


@dataclass(frozen=True)
class World:
    """Static arrays of one run (H hosts, V VMs, S + 1 samples)."""

    host_mips: FloatA  # (H,) total MIPS
    host_pe: FloatA  # (H,) MIPS of one core
    host_ram: FloatA
    host_bw: FloatA
    host_power: FloatA  # (H, 11) W
    host_type: NDArray[np.int64]
    vm_mips: FloatA  # (V,)
    vm_ram: FloatA
    vm_bw: FloatA
    vm_type: NDArray[np.int64]
    samples: FloatA  # (V, S + 1) utilisation, last sample repeated as CloudSim does
    interval: float
    names: tuple[str, ...] = field(default=())
    memory_aware: bool = False
    drop_idle: bool = True  # CloudSim destroys a VM whose demand is exactly 0 (paper mode)
    host_names: tuple[str, ...] = field(default=())
    # (V, S + 1) bool or None: False once a VM's samples stop (after the trace's gap limit);
    # the VM leaves then, for the rest of the run
    present: NDArray[np.bool_] | None = None
    # (V,) int64 or None: the slot of each VM's first sample (0: there from the start); a
    # VM arrives then (outside paper mode; xdrs.sim.arrivals)
    arrival: NDArray[np.int64] | None = None

    @property
    def n_hosts(self) -> int:
        return int(self.host_mips.shape[0])

    @property
    def n_vms(self) -> int:
        return int(self.vm_mips.shape[0])


def host_layout(dc: Datacenter) -> NDArray[np.int64]:
    """(H,) host type of every host."""
    n_types = len(dc.host_types)
    pattern = (
        np.repeat(np.arange(n_types), dc.host_counts) if dc.host_counts else np.arange(n_types)
    )
    return pattern[np.arange(dc.n_hosts) % pattern.size].astype(np.int64)


def build_world(dc: Datacenter, trace: Trace) -> World:
    """Arrays for ``dc`` running ``trace``."""
    h = host_layout(dc)
    ht = dc.host_types
    v = len(trace.vm_names)
    block = math.ceil(v / len(dc.vm_types))
    vt = np.minimum(np.arange(v) // block, len(dc.vm_types) - 1)
    vms = dc.vm_types
    ram = _given(trace.mem_mb, np.array([vms[t].ram_mb for t in vt]))
    mips = _given(trace.vm_mhz, np.array([vms[t].mips for t in vt]))
    host_mips = np.array([ht[t].cores * ht[t].core_mips for t in h])
    # the kernel caps a VM's request at one core (the paper's VMs have one vCPU); VMs with
    # their own sizes may have several vCPUs, so their host's whole capacity is the cap
    per_core = dc.per_core_cap and trace.vm_mhz is None
    util = trace.util
    return World(
        host_mips=host_mips,
        host_pe=np.array([ht[t].core_mips for t in h]) if per_core else host_mips.copy(),
        host_ram=np.array([ht[t].ram_mb for t in h]),
        host_bw=np.array([ht[t].bw for t in h]),
        host_power=np.array([ht[t].power for t in h], dtype=np.float64),
        host_type=h.astype(np.int64),
        vm_mips=mips,
        vm_ram=ram,
        vm_bw=np.array([vms[t].bw for t in vt]),
        vm_type=vt.astype(np.int64),
        samples=_repeat_last(util),
        interval=trace.step_s,
        names=trace.vm_names,
        memory_aware=dc.memory_aware,
        drop_idle=trace.paper,
        present=None if trace.present is None else _repeat_last(_until_gone(trace.present)),
        arrival=None if trace.present is None or trace.paper else _first_sample(trace.present),
    )


def _until_gone(present: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """(V, T) True until a VM's samples stop (and before its first sample, when the VM has
    not arrived yet: :attr:`World.arrival` says when it does)."""
    return np.asarray(present | ~np.logical_or.accumulate(present, axis=1))


def _first_sample(present: NDArray[np.bool_]) -> NDArray[np.int64]:
    """(V,) slot of each VM's first sample (0 for a VM without any)."""
    return np.asarray(np.argmax(present, axis=1), dtype=np.int64)


def _given(sizes: FloatA | None, default: FloatA) -> FloatA:
    """Per-VM sizes from the trace where known (> 0), ``default`` elsewhere."""
    return default if sizes is None else np.where(sizes > 0, sizes, default)


def _repeat_last(a: NDArray[Any]) -> NDArray[Any]:
    """(V, T + 1): the last sample repeated, as CloudSim's PlanetLab model reads past the end."""
    return np.concatenate([a, a[:, -1:]], axis=1)
