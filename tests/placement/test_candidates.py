"""Balancing candidates: the one-domain shortcut of ``pairs`` against the general path; the
host scores and move gains against plain recomputations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as hst
from hypothesis.extra import numpy as hnp

from placement import Capacity, ClusterState
from placement.strategies.candidates import Scorer, cells, gains, pairs, weighted
from placement.workspace import Workspace
from tests.placement.clusters import clusters


@settings(max_examples=60, deadline=None)
@given(state=clusters(max_hosts=12), extremes=hst.integers(1, 6), limit=hst.integers(1, 8))
def test_one_domain_pairs_match_the_general_path(
    state: ClusterState, extremes: int, limit: int
) -> None:
    ws = Workspace(state, Capacity(0.9, 0.95))
    assume(ws.one_domain and len(ws.live_hosts) > 1)
    for lim in (None, limit):
        fast = pairs(ws, (0.5, 0.5), extremes, limit=lim)
        ws.one_domain = False
        general = pairs(ws, (0.5, 0.5), extremes, limit=lim)
        ws.one_domain = True
        np.testing.assert_array_equal(fast[0], general[0])
        np.testing.assert_array_equal(fast[1], general[1])


@settings(max_examples=100, deadline=None)
@given(
    loads=hnp.arrays(np.float64, hst.tuples(hst.integers(0, 40), hst.just(2)),
                     elements=hst.floats(0, 4)),
    w=hst.tuples(hst.floats(0, 1), hst.floats(0, 1)),
)  # fmt: skip
def test_weighted_is_each_product_and_the_sum_rounded_in_order(
    loads: np.ndarray, w: tuple[float, float]
) -> None:
    # Python floats: every operation rounded on its own, no fused multiply-add, no BLAS
    want = [a * w[0] + b * w[1] for a, b in loads.tolist()]
    assert weighted(loads, w).tolist() == want


@settings(max_examples=40, deadline=None)
@given(state=clusters(max_hosts=12), w=hst.sampled_from([(0.5, 0.5), (0.8, 0.2)]))
def test_gains_are_the_drop_of_the_objective_after_each_move(
    state: ClusterState, w: tuple[float, float]
) -> None:
    ws = Workspace(state, Capacity(0.9, 0.95))
    assume(len(ws.live_hosts) > 1)
    ps, pd = pairs(ws, w, 4, aligned=False)
    cp, vm = cells(ws, ps)
    assume(len(vm) > 0)
    src, dst = ps[cp], pd[cp]
    got = gains(ws, w, vm, src, dst)
    np.testing.assert_allclose(got, Scorer(ws, w, vm, src, dst)(ws), rtol=1e-9, atol=1e-9)
    live = ws.ok

    def objective(dem: np.ndarray) -> float:
        loads = (dem / ws.phys)[live]
        return float(w[0] * loads[:, 0].std() + w[1] * loads[:, 1].std())

    for k in range(len(vm)):
        dem = ws.dem.copy()
        dem[src[k]] -= state.demand[vm[k], :2]
        dem[dst[k]] += state.demand[vm[k], :2]
        drop = (objective(ws.dem) - objective(dem)) * live.sum()
        assert got[k] == pytest.approx(drop, rel=1e-7, abs=1e-7), k
