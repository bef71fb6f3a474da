"""Seeded synthetic clusters for tests and benchmarks.

Hosts come from a few hardware types, VMs from an OpenStack-like flavor list, and the
initial placement is skewed: each host gets a power-law "popularity" and VMs are dropped one
batch at a time onto popular hosts that still have allocation capacity, so some hosts are
full and others nearly empty. The flavor mix is tilted so that the cluster's memory
allocation fills about 55-70 % of its capacity, whatever the VM-to-host ratio.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from placement import ClusterState, make_state
from placement.constraints import host_totals

__all__ = ["FLAVORS", "HOST_TYPES", "synth_cluster"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]

GIB = 1024.0
# cores, memory GiB, disk GiB, share of the fleet
HOST_TYPES = np.array(
    [
        [32, 256, 1920, 0.30],
        [48, 384, 3840, 0.30],
        [64, 512, 3840, 0.25],
        [128, 1024, 7680, 0.15],
    ]
)
RESERVED = np.array([2.0, 8 * GIB, 100.0])  # cores, MiB, GiB held back for the hypervisor
RATIOS = np.array([4.0, 1.0, 1.0])  # vcpu_ratio, memory_ratio, disk_ratio
# vCPUs, memory GiB, disk GiB, base popularity (small flavors are the common ones)
FLAVORS = np.array(
    [
        [1, 2, 20, 0.20],
        [2, 4, 40, 0.25],
        [2, 8, 40, 0.15],
        [4, 8, 80, 0.12],
        [4, 16, 80, 0.10],
        [8, 16, 160, 0.07],
        [8, 32, 160, 0.05],
        [16, 32, 320, 0.03],
        [16, 64, 320, 0.03],
    ]
)
# behaviour class probabilities: idle, bursty, busy
BEHAVIOUR = np.array([0.3, 0.5, 0.2])
FILL = (0.55, 0.70)
PLACE_ROUNDS = 60


def synth_cluster(
    n_hosts: int,
    n_vms: int,
    *,
    seed: int = 0,
    domain_size: int | None = None,
    skew: float = 3.0,
) -> ClusterState:
    """Build a random cluster of ``n_hosts`` hosts and ``n_vms`` VMs.

    Parameters
    ----------
    n_hosts, n_vms : int
        Cluster size (``n_hosts >= 1``).
    seed : int
        Seed of the numpy Generator; equal arguments give equal clusters.
    domain_size : int or None
        Hosts per migration domain (host ``h`` is in domain ``h // domain_size``);
        None puts every host in one domain.
    skew : float
        Exponent of the host popularity ``u ** skew`` (``u`` uniform); 0 places uniformly.
    """
    if n_hosts < 1 or n_vms < 0:
        raise ValueError(f"n_hosts >= 1 and n_vms >= 0 expected, got {n_hosts}, {n_vms}")
    if domain_size is not None and domain_size < 1:
        raise ValueError(f"domain_size: expected >= 1 or None, got {domain_size}")
    rng = np.random.default_rng(seed)
    phys = _hosts(rng, n_hosts)
    cap = np.floor((phys - RESERVED) * RATIOS)
    fill = rng.uniform(*FILL)
    alloc = _vms(rng, n_vms, fill * cap[:, 1].sum() / max(n_vms, 1))
    demand = _demand(rng, alloc)
    place = _place(rng, alloc, cap, rng.random(n_hosts) ** skew)
    domain = None if domain_size is None else np.arange(n_hosts) // domain_size
    return make_state(
        [f"host-{h:05d}" for h in range(n_hosts)],
        [f"vm-{v:06d}" for v in range(n_vms)],
        phys,
        alloc,
        demand,
        place,
        alloc_cap=cap,
        domain=domain,
    )


def _hosts(rng: np.random.Generator, n: int) -> FloatA:
    """(n, 3): cores, MiB, GiB of hosts drawn from :data:`HOST_TYPES`."""
    kind = rng.choice(len(HOST_TYPES), size=n, p=HOST_TYPES[:, 3] / HOST_TYPES[:, 3].sum())
    phys = HOST_TYPES[kind, :3].copy()
    phys[:, 1] *= GIB
    return phys


def _vms(rng: np.random.Generator, n: int, mean_mib: float) -> FloatA:
    """(n, 3): vCPUs, MiB, GiB of flavors whose mix is tilted to average ``mean_mib``."""
    p = _tilted_mix(mean_mib / GIB)
    kind = rng.choice(len(FLAVORS), size=n, p=p)
    alloc = FLAVORS[kind, :3].copy()
    alloc[:, 1] *= GIB
    return alloc


def _tilted_mix(mean_gib: float) -> FloatA:
    """Flavor probabilities ``base * mem ** theta`` with expected memory ``mean_gib``.

    The expected memory grows with ``theta``, so bisection finds it; targets outside the
    flavor range end at the smallest or largest flavor.
    """
    base, mem = FLAVORS[:, 3], FLAVORS[:, 1]
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        w = base * mem**mid
        if (w @ mem) / w.sum() < mean_gib:
            lo = mid
        else:
            hi = mid
    w = base * mem**lo
    return np.asarray(w / w.sum(), dtype=np.float64)


def _demand(rng: np.random.Generator, alloc: FloatA) -> FloatA:
    """(n, 3): cores busy (idle ~5 %, bursty beta, busy 60-90 %), MiB resident, GiB."""
    n = len(alloc)
    kind = rng.choice(3, size=n, p=BEHAVIOUR)
    util = np.select(
        [kind == 0, kind == 1],
        [rng.uniform(0.02, 0.08, n), rng.beta(2.0, 5.0, n)],
        rng.uniform(0.6, 0.9, n),
    )
    ram = rng.uniform(0.30, 0.95, n) * alloc[:, 1]
    return np.column_stack([util * alloc[:, 0], np.round(ram), alloc[:, 2]])


def _place(rng: np.random.Generator, alloc: FloatA, cap: FloatA, weight: FloatA) -> IntA:
    """(V,) host of each VM: popularity-weighted draws, kept only where the VM still fits.

    Each round draws a host for every unplaced VM; on each host the drawn VMs are taken in
    index order and a VM is kept when the running total of the VMs drawn before it (kept or
    not) plus itself fits, so kept VMs never exceed capacity. Rejected VMs redraw.
    """
    n_v, n_h = len(alloc), len(cap)
    place = np.full(n_v, -1, np.int64)
    used = np.zeros_like(cap)
    todo = np.arange(n_v)
    for _ in range(PLACE_ROUNDS):
        if todo.size == 0:
            break
        free = cap - used
        p = weight * (free >= alloc[todo].min(axis=0)).all(axis=1)
        if p.sum() <= 0:
            break
        pick = rng.choice(n_h, size=todo.size, p=p / p.sum())
        kept, todo = _keep_fitting(alloc, free, todo, pick)
        place[kept[0]] = kept[1]
        used += host_totals(alloc[kept[0]], kept[1], n_h)
    _place_rest(alloc, cap, used, place, todo)
    return place


def _keep_fitting(
    alloc: FloatA, free: FloatA, vms: IntA, hosts: IntA
) -> tuple[tuple[IntA, IntA], IntA]:
    """((kept VMs, their hosts), rejected VMs) for one round of draws."""
    order = np.lexsort((vms, hosts))
    v, h = vms[order], hosts[order]
    cum = np.cumsum(alloc[v], axis=0)
    first = np.r_[0, np.flatnonzero(h[1:] != h[:-1]) + 1]
    size = np.diff(np.r_[first, len(h)])
    base = np.repeat(np.vstack([np.zeros((1, 3)), cum[first[1:] - 1]]), size, axis=0)
    fits = (cum - base <= free[h] + 1e-9).all(axis=1)
    return (v[fits], h[fits]), v[~fits]


def _place_rest(alloc: FloatA, cap: FloatA, used: FloatA, place: IntA, todo: IntA) -> None:
    """Last resort for the few VMs the draws did not place: the host with most free memory."""
    for v in todo.tolist():
        fits = (used + alloc[v] <= cap + 1e-9).all(axis=1)
        if not fits.any():
            raise ValueError(f"vm {v}: no host has room; use fewer VMs or more hosts")
        h = int(np.argmax(np.where(fits, cap[:, 1] - used[:, 1], -np.inf)))
        place[v] = h
        used[h] += alloc[v]
