"""The vectorised CPU-share model against a host-by-host loop written from CloudSim's rules."""

from __future__ import annotations

import math

import numpy as np

from xdrs.sim.hosts import Entries, evaluate


def ref_host(
    entries: list[tuple[int, bool]], req: np.ndarray, mig: np.ndarray, total: float, pe: float
):
    """entries: (vm, incoming) in list order. Returns util, requested, alloc per entry."""
    avail, over, wsum, caps = total, False, 0.0, []
    for v, inc in entries:
        c = pe if req[v] > pe else req[v]
        w = c * 0.1 if inc else c
        caps.append(c)
        if not over and avail >= w:
            avail -= w
        else:
            over, avail = True, 0.0
        wsum += w
    util, requested, allocs = 0.0, 0.0, []
    for (v, inc), c in zip(entries, caps, strict=True):
        out = mig[v] and not inc
        if over:
            s = total / wsum
            a = math.floor(c * s * 0.9) if out else math.floor((c * 0.1 if inc else c) * s)
        else:
            a = c * 0.9 if out else (c * 0.1 if inc else c)
        allocs.append(a)
        util += a / 0.9 if out else a
        requested += req[v]
    return util, requested, allocs


def test_evaluate_matches_reference() -> None:
    rng = np.random.default_rng(11)
    n_v, n_h = 60, 8
    total = np.where(np.arange(n_h) % 2, 5320.0, 3720.0)
    pe = total / 2
    req = rng.choice([0.0, 300, 900, 1500, 2000, 2500], n_v) * rng.uniform(0.5, 1, n_v)
    host = rng.integers(0, n_h, n_v)
    seq = rng.permutation(n_v)
    mig = np.zeros(n_v, bool)
    f_vm = rng.choice(n_v, 6, replace=False)
    f_host = (host[f_vm] + 1) % n_h
    mig[f_vm] = True
    e = Entries(
        vm=np.concatenate([np.arange(n_v), f_vm]),
        host=np.concatenate([host, f_host]),
        seq=np.concatenate([seq, np.arange(n_v, n_v + 6)]),
        incoming=np.concatenate([np.zeros(n_v, bool), np.ones(6, bool)]),
    )
    st = evaluate(e, req, mig, total, pe)
    overs = 0
    for h in range(n_h):
        idx = [i for i in np.argsort(e.seq) if e.host[i] == h]
        util, requested, allocs = ref_host(
            [(int(e.vm[i]), bool(e.incoming[i])) for i in idx], req, mig, total[h], pe[h]
        )
        assert st.util_mips[h] == util
        assert st.req_mips[h] == requested
        assert st.alloc[idx].tolist() == allocs
        overs += int(st.avail[h] == 0)
    assert overs > 0  # the data exercise over-subscription
