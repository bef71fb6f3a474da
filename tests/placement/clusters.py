"""Small clusters for the placement tests: a hypothesis strategy and a hand-made builder."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from placement import ClusterState, Rules, make_state
from placement.rules import MUST, MUST_NOT, SHOULD


def build(
    hosts: list[tuple[float, float]],
    vms: list[tuple[float, float, float, float, int]],
    **kw: object,
) -> ClusterState:
    """hosts: (cores, MiB); vms: (vcpus, MiB, cpu_util 0..1, resident MiB, host)."""
    phys = np.array([[c, m, 1000.0] for c, m in hosts])
    alloc = np.array([[c, m, 10.0] for c, m, _, _, _ in vms]).reshape(-1, 3)
    demand = np.array([[c * u, r, 10.0] for c, _, u, r, _ in vms]).reshape(-1, 3)
    place = np.array([h for *_, h in vms], dtype=np.int64)
    return make_state(
        [f"h{i}" for i in range(len(hosts))],
        [f"v{i}" for i in range(len(vms))],
        phys,
        alloc,
        demand,
        place,
        **kw,  # type: ignore[arg-type]
    )


@st.composite
def clusters(draw: st.DrawFn, max_hosts: int = 8, max_vms: int = 40) -> ClusterState:
    """Random clusters with domains, maintenance, pinned VMs and hard and soft rules."""
    n_h = draw(st.integers(2, max_hosts))
    n_v = draw(st.integers(0, max_vms))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cores = rng.choice([8.0, 16.0, 32.0], n_h)
    mem = rng.choice([32768.0, 65536.0, 131072.0], n_h)
    phys = np.c_[cores, mem, np.full(n_h, 500.0)]
    vc = rng.choice([1.0, 2.0, 4.0, 8.0], n_v)
    vmem = vc * rng.choice([1024.0, 2048.0, 4096.0], n_v)
    alloc = np.c_[vc, vmem, np.full(n_v, 20.0)]
    demand = np.c_[vc * rng.beta(0.8, 2.0, n_v), vmem * rng.uniform(0.2, 1.0, n_v), alloc[:, 2]]
    place = rng.integers(0, n_h, n_v) if n_v else np.zeros(0, np.int64)
    domain = rng.integers(0, draw(st.integers(1, 2)), n_h)
    maintenance = rng.random(n_h) < draw(st.sampled_from([0.0, 0.2]))
    pinned = rng.random(n_v) < draw(st.sampled_from([0.0, 0.1]))
    rules = _rules(rng, n_h, n_v) if draw(st.booleans()) and n_v >= 4 else None
    return make_state(
        [f"h{i}" for i in range(n_h)],
        [f"v{i}" for i in range(n_v)],
        phys,
        alloc,
        demand,
        place,
        alloc_cap=phys * [4.0, 1.0, 1.0],
        domain=domain,
        maintenance=maintenance,
        pinned=pinned,
        rules=rules,
    )


def _rules(rng: np.random.Generator, n_h: int, n_v: int) -> Rules:
    vms = rng.permutation(n_v)
    hosts = rng.permutation(n_h)
    return Rules.build(
        n_h,
        vv=[("anti", True, vms[:3].tolist()), ("together", False, vms[3:4].tolist())],
        vh=[
            ("must", MUST, vms[4:6].tolist(), hosts[: max(1, n_h // 2)].tolist()),
            ("must-not", MUST_NOT, vms[6:7].tolist(), hosts[:1].tolist()),
            ("should", SHOULD, vms[7:9].tolist(), hosts[:1].tolist()),
        ],
    )
