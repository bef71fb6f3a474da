"""What-if from the present: a ``drs-peer-cluster/1`` snapshot simulated forward.

CPU is counted in cores (a VM's size is its vCPUs, a host's its physical cores; no
per-core cap), memory in MiB and checked at every placement, and idle VMs stay (unlike
CloudSim, which destroys VMs whose demand reaches 0). Demand comes from a trace of the
same VMs (CSV ``timestamp,vm_id,cpu_pct``, % of the VM's vCPUs, or the metric history on
the Kafka metrics topic, :mod:`xdrs.sim.history`) where it has a value, and otherwise stays
at the snapshot's measured demand. Hosts without a power curve get the HP ML110 G5 curve.
Migrations take memory / (half of a 10 Gbit/s link): 8 GiB in about 13 s.
"""

from __future__ import annotations

import numpy as np

from collectors.replay.resample import MAX_CELLS
from collectors.replay.traces import Trace, TraceError
from placement import ClusterState
from xdrs.errors import SnapshotError
from xdrs.sim.setup import PAPER_HOSTS, World

__all__ = ["world_from_snapshot"]


def _check(st: ClusterState, steps: int) -> None:
    for col, what in ((0, "vCPUs"), (1, "memory")):
        bad = np.flatnonzero(st.phys[:, col] <= 0)
        if bad.size:
            raise SnapshotError(
                f"snapshot: host {st.host_ids[bad[0]]!r} has no {what} ({bad.size} such "
                "hosts); the simulator needs every host to have CPU cores and memory "
                "(remove those hosts from the snapshot)"
            )
    bad = np.flatnonzero(st.alloc[:, 0] <= 0)
    if bad.size:
        raise SnapshotError(
            f"snapshot: VM {st.vm_ids[bad[0]]!r} has no vCPUs ({bad.size} such VMs); the "
            "simulator counts CPU demand as a share of each VM's vCPUs"
        )
    if st.n_vms * steps > MAX_CELLS:
        raise SnapshotError(
            f"snapshot: {st.n_vms:,} VMs x {steps:,} steps is more than {MAX_CELLS:,} "
            "samples; simulate fewer --hours"
        )


LINK = 10_000_000.0  # in CloudSim's units (1,000,000 = 1 Gbit/s): MiB / 625 s


def _utilisation(st: ClusterState, trace: Trace | None, steps: int) -> np.ndarray:
    now = np.clip(st.demand[:, 0] / np.maximum(st.alloc[:, 0], 1e-9), 0.0, 1.0)
    if trace is None:
        return np.repeat(now[:, None], steps, axis=1)
    index = {n: i for i, n in enumerate(trace.vm_names)}
    known = [v for v in st.vm_ids if v in index]
    if not known:
        raise TraceError(f"{trace.name}: no VM of the snapshot appears in the trace")
    util = np.repeat(now[:, None], trace.n_steps, axis=1)
    trace_util = trace.util
    for i, vid in enumerate(st.vm_ids):
        if vid in index:
            util[i] = trace_util[index[vid]]
            if trace.present is not None:  # no value in the history: the measured demand
                util[i] = np.where(trace.present[index[vid]], util[i], now[i])
    return util


def world_from_snapshot(
    st: ClusterState, trace: Trace | None, hours: float = 24.0, interval: float = 300.0
) -> tuple[World, np.ndarray]:
    """The simulator's arrays for ``st`` and its initial placement."""
    if trace is not None:
        interval = trace.step_s
    steps = max(int(hours * 3600 / interval), 2)
    _check(st, trace.n_steps if trace is not None else steps)
    util = _utilisation(st, trace, steps)
    power = st.power if st.power is not None else np.tile(PAPER_HOSTS[1].power, (st.n_hosts, 1))
    cores = st.phys[:, 0].astype(np.float64)
    world = World(
        host_mips=cores,
        host_pe=cores,
        host_ram=st.phys[:, 1].astype(np.float64),
        host_bw=np.full(st.n_hosts, LINK),
        host_power=np.asarray(power, dtype=np.float64),
        host_type=np.zeros(st.n_hosts, dtype=np.int64),
        vm_mips=st.alloc[:, 0].astype(np.float64),
        vm_ram=st.alloc[:, 1].astype(np.float64),
        vm_bw=np.zeros(st.n_vms),
        vm_type=np.zeros(st.n_vms, dtype=np.int64),
        samples=np.concatenate([util, util[:, -1:]], axis=1),
        interval=interval,
        names=st.vm_ids,
        memory_aware=True,
        drop_idle=False,
        host_names=st.host_ids,
    )
    return world, st.placement.copy()
