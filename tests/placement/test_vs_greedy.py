"""Balance under a move budget against the greedy baseline of bench/greedy.py: the best
single feasible move over all VMs x all hosts, k times."""

from __future__ import annotations

import pytest

from bench.greedy import greedy
from placement import BalanceArgs, host_loads, imbalance, run
from xdrs.synth import synth_cluster


@pytest.mark.parametrize(("hosts", "seed"), [(30, 0), (30, 1), (200, 0)])
def test_budgeted_balance_is_at_least_as_balanced_as_greedy(hosts: int, seed: int) -> None:
    # 200 hosts: too many cells for the dense search, so the candidate sets are tested
    state = synth_cluster(hosts, 10 * hosts, seed=seed)
    budgets = (1, 5, 10, 30)
    trace = greedy(state, max(budgets))
    for k in budgets:
        plan = run("balance", state, BalanceArgs(threshold=5, max_moves=k))
        final = plan.final_placement(state.placement)
        ours = imbalance(host_loads(state, final), (0.5, 0.5), state.host_ok)
        theirs = trace.imbalance[min(k, len(trace.imbalance) - 1)]
        assert ours <= theirs + 1e-9, f"k={k}: {ours} > greedy {theirs}"
