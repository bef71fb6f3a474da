"""Waves: concurrency limits hold and every wave is feasible in any completion order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from placement import ClusterState, OrderArgs, order_plan, run
from placement.constraints import EPS, host_totals
from tests.placement.clusters import build, clusters


def check_waves(state: ClusterState, name: str, args: OrderArgs) -> None:
    plan = run(name, state)
    waves = order_plan(plan, state, args)
    assert [w.start for w in waves] == [0, *[w.stop for w in waves[:-1]]][: len(waves)]
    assert (waves[-1].stop if waves else 0) == plan.n_moves
    place = state.placement.copy()
    used = host_totals(state.alloc, place, state.n_hosts)
    for w in waves:
        idx = np.arange(w.start, w.stop)
        hosts = np.r_[plan.src[idx], plan.dst[idx]]
        assert np.bincount(hosts).max() <= args.per_host
        assert len(set(plan.vm[idx].tolist())) == len(idx)
        # arrivals count before departures: any completion order stays within capacity
        arriving = host_totals(state.alloc[plan.vm[idx]], plan.dst[idx], state.n_hosts)
        dst = plan.dst[idx]
        assert (used[dst] + arriving[dst] <= state.alloc_cap[dst] + EPS).all()
        used += arriving - host_totals(state.alloc[plan.vm[idx]], plan.src[idx], state.n_hosts)
        assert w.duration_s > 0


@settings(max_examples=60, deadline=None)
@given(state=clusters(max_hosts=10, max_vms=60))
def test_waves_respect_limits_and_capacity(state: ClusterState) -> None:
    for name in ("balance", "consolidate", "evacuate"):
        check_waves(state, name, OrderArgs(per_host=2, per_cluster=3))


def test_duration_follows_memory_and_link() -> None:
    # one 8 GiB resident VM moves alone: 8192 MiB * 1.2 * 8.388608 Mbit / 10,000 Mbit/s + 2 s
    state = build([(16, 65536)] * 2, [(4, 8192, 0.9, 8192, 0)] * 4)
    plan = run("balance", state)
    waves = order_plan(plan, state, OrderArgs(per_host=1))
    assert len(waves) == plan.n_moves == 2
    expect = 8192 * 1.2 * 8.388608 / 10_000 + 2.0
    assert waves[0].duration_s == np.float64(expect)


def test_final_placement_takes_each_vms_last_move() -> None:
    from placement import Plan

    i = np.array
    plan = Plan("t", i([0, 1, 0, 0]), i([0, 0, 1, 2]), i([1, 2, 2, 3]), i([4] * 4), np.zeros(4),
                np.zeros(4), 0.0, 0.0)  # fmt: skip
    np.testing.assert_array_equal(plan.final_placement(i([0, 0, 5])), [3, 2, 5])


def test_link_speeds_outside_any_real_link_are_refused() -> None:
    # 1e-300 Gbit/s passed "> 0" and made the estimated duration overflow to inf
    import pytest

    for bad in (1e-300, 0.0, 1e5):
        with pytest.raises(ValueError, match="link_gbps"):
            OrderArgs(link_gbps=bad).validate()
    OrderArgs(link_gbps=1e-3).validate()
    OrderArgs(link_gbps=1e4).validate()
