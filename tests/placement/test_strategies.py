"""Conformance suite run against every registered strategy (plan invariants as properties)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from placement import (
    STRATEGIES,
    BalanceArgs,
    ClusterState,
    ConsolidateArgs,
    Plan,
    Reason,
    Rules,
    host_loads,
    imbalance,
    reasons,
    run,
)
from placement.constraints import ANTI_AFFINITY, EPS, HOST_RULE, host_totals
from placement.rules import SHOULD
from tests.placement.clusters import build, clusters

NAMES = sorted(STRATEGIES)
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def replay(state: ClusterState, plan: Plan) -> np.ndarray:
    """Apply the moves one by one, asserting every step is a legal, feasible move."""
    place = state.placement.copy()
    used = host_totals(state.alloc, place, state.n_hosts)
    for v, s, d in zip(plan.vm.tolist(), plan.src.tolist(), plan.dst.tolist(), strict=True):
        assert place[v] == s, f"move of VM {v}: source {s} is not its host {place[v]}"
        assert not state.pinned[v], f"pinned VM {v} moved"
        assert state.host_ok[d], f"VM {v} sent to host {d} in maintenance or disabled"
        assert state.domain[s] == state.domain[d], f"VM {v} left its migration domain"
        used[s] -= state.alloc[v]
        used[d] += state.alloc[v]
        assert (used[d] <= state.alloc_cap[d] + EPS).all(), f"host {d} over capacity after {v}"
        place[v] = d
    return place


def hard_violations(state: ClusterState, place: np.ndarray) -> set[int]:
    """VMs breaking a hard VM-host or anti-affinity rule, or left in maintenance (pinned
    VMs included: a plan must report them, not leave them silently)."""
    vms = np.arange(state.n_vms)
    bits = reasons(state, vms, place)[vms, place] if state.n_vms else np.zeros(0, np.uint32)
    bad = (bits & (HOST_RULE | ANTI_AFFINITY)) != 0
    bad |= state.maintenance[place]
    return set(np.flatnonzero(bad).tolist())


@pytest.mark.parametrize("name", NAMES)
@PROPS
@given(state=clusters())
def test_every_step_is_feasible_and_hard_rules_hold(name: str, state: ClusterState) -> None:
    plan = run(name, state)
    final = replay(state, plan)
    np.testing.assert_array_equal(final, plan.final_placement(state.placement))
    assert hard_violations(state, final) <= set(plan.unresolved.tolist())


@pytest.mark.parametrize("name", NAMES)
@PROPS
@given(state=clusters())
def test_plan_is_deterministic(name: str, state: ClusterState) -> None:
    a, b = run(name, state, seed=1), run(name, state, seed=2)
    np.testing.assert_array_equal(a.vm, b.vm)
    np.testing.assert_array_equal(a.dst, b.dst)


@PROPS
@given(state=clusters())
def test_balance_never_worsens_the_objective(state: ClusterState) -> None:
    args = BalanceArgs(threshold=5)
    plan = run("balance", state, args)
    optional = plan.reason >= Reason.OVERLOAD
    assert optional.all() == (plan.reason.size == optional.sum())
    if (~optional).any():
        return  # mandatory moves may cost balance; they are tested for feasibility above
    final = plan.final_placement(state.placement)
    after = imbalance(host_loads(state, final), args.weights, state.host_ok)
    assert after <= plan.objective_before + 1e-9
    assert after == pytest.approx(plan.objective_after)


@PROPS
@given(state=clusters(), k=hst.integers(0, 12))
def test_balance_under_a_budget_is_feasible_and_never_worse(state: ClusterState, k: int) -> None:
    # a budget switches balance to single best moves (the precise search)
    args = BalanceArgs(threshold=5, max_moves=k)
    plan = run("balance", state, args)
    final = replay(state, plan)
    assert hard_violations(state, final) <= set(plan.unresolved.tolist())
    optional = plan.reason >= Reason.OVERLOAD
    assert optional.sum() <= k
    if (~optional).any():
        return  # mandatory moves may cost balance
    after = imbalance(host_loads(state, final), args.weights, state.host_ok)
    assert after <= plan.objective_before + 1e-9
    assert after == pytest.approx(plan.objective_after)


@PROPS
@given(state=clusters())
def test_consolidate_never_adds_active_hosts(state: ClusterState) -> None:
    plan = run("consolidate", state)
    final = plan.final_placement(state.placement)
    if (plan.reason == Reason.CONSOLIDATION).all():
        assert np.unique(final).size <= np.unique(state.placement).size
    for h in plan.release_hosts.tolist():
        assert not (final == h).any(), f"released host {h} still holds VMs"


def test_balance_spreads_a_hot_host() -> None:
    # two equal hosts, all four VMs on host 0
    state = build([(16, 65536)] * 2, [(4, 8192, 0.9, 8192, 0)] * 4)
    plan = run("balance", state, BalanceArgs(threshold=5))
    final = plan.final_placement(state.placement)
    assert np.bincount(final, minlength=2).tolist() == [2, 2]
    assert plan.objective_after == pytest.approx(0.0)
    assert (plan.reason == Reason.IMBALANCE).all()


def test_threshold_one_makes_only_mandatory_moves() -> None:
    state = build([(16, 65536)] * 2, [(4, 8192, 0.9, 8192, 0)] * 4)
    assert run("balance", state, BalanceArgs(threshold=1)).n_moves == 0


def test_max_moves_budget_is_respected() -> None:
    state = build([(16, 65536)] * 4, [(2, 4096, 0.5, 4096, 0)] * 8)
    for k in (0, 1, 2, 3):
        assert run("balance", state, BalanceArgs(threshold=5, max_moves=k)).n_moves == k


def test_consolidate_packs_two_half_empty_hosts() -> None:
    state = build([(16, 65536)] * 3, [(2, 8192, 0.1, 4096, h) for h in (0, 1, 2, 2)])
    plan = run("consolidate", state, ConsolidateArgs())
    final = plan.final_placement(state.placement)
    assert np.unique(final).size == 1
    assert sorted(plan.release_hosts.tolist()) == [0, 1]


def test_evacuate_empties_maintenance_host_once_per_vm() -> None:
    state = build(
        [(16, 65536)] * 3,
        [(2, 8192, 0.5, 4096, 0)] * 3 + [(2, 8192, 0.5, 4096, 1)],
        maintenance=[True, False, False],
    )
    plan = run("evacuate", state)
    assert sorted(plan.vm.tolist()) == [0, 1, 2]
    assert (plan.reason == Reason.MAINTENANCE).all()
    assert plan.release_hosts.tolist() == [0]


def test_unplaceable_vm_is_reported_not_overcommitted() -> None:
    state = build(
        [(16, 16384), (16, 16384)],
        [(2, 12288, 0.5, 4096, 0), (2, 12288, 0.5, 4096, 1)],
        maintenance=[True, False],
    )
    plan = run("evacuate", state)
    assert plan.n_moves == 0
    assert plan.unresolved.tolist() == [0]
    assert any("no host can take" in n for n in plan.notes)


def test_balance_prefers_hosts_a_should_rule_names() -> None:
    # three equal hosts; VM 0 should run on host 1: balance sends it there, not to host 2
    hosts = [(16, 65536)] * 3
    vms = [(4, 8192, 0.9, 8192, 0)] * 3
    free = run("balance", build(hosts, vms), BalanceArgs(threshold=5))
    rules = Rules.build(3, vh=[("pref", SHOULD, [0], [1])])
    ruled = run("balance", build(hosts, vms, rules=rules), BalanceArgs(threshold=5))
    assert free.n_moves == ruled.n_moves == 2
    assert ruled.final_placement(np.zeros(3, np.int64))[0] == 1


def test_budgeted_balance_never_trades_imbalance_for_a_should_rule() -> None:
    """Regression (found by hypothesis): with k = 1, mending a should-rule made the one move
    worsen the imbalance (0.0371 -> 0.0442)."""
    from numpy import array

    state = ClusterState(
        host_ids=("h0", "h1"),
        vm_ids=("v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12"),
        phys=array([[3.20000e01, 1.31072e05, 5.00000e02], [3.20000e01, 1.31072e05, 5.00000e02]]),
        alloc_cap=array(
            [[1.28000e02, 1.31072e05, 5.00000e02], [1.28000e02, 1.31072e05, 5.00000e02]]
        ),
        alloc=array(
            [
                [1.0000e00, 4.0960e03, 2.0000e01],
                [8.0000e00, 8.1920e03, 2.0000e01],
                [8.0000e00, 3.2768e04, 2.0000e01],
                [2.0000e00, 8.1920e03, 2.0000e01],
                [1.0000e00, 1.0240e03, 2.0000e01],
                [1.0000e00, 2.0480e03, 2.0000e01],
                [8.0000e00, 3.2768e04, 2.0000e01],
                [8.0000e00, 3.2768e04, 2.0000e01],
                [4.0000e00, 4.0960e03, 2.0000e01],
                [4.0000e00, 8.1920e03, 2.0000e01],
                [8.0000e00, 1.6384e04, 2.0000e01],
                [1.0000e00, 2.0480e03, 2.0000e01],
                [8.0000e00, 3.2768e04, 2.0000e01],
            ]
        ),
        demand=array(
            [
                [5.87397719e-01, 2.63120758e03, 2.00000000e01],
                [3.02340987e00, 3.95701816e03, 2.00000000e01],
                [3.69024153e00, 1.70120668e04, 2.00000000e01],
                [4.93615927e-01, 8.11266521e03, 2.00000000e01],
                [2.41110131e-01, 8.67725291e02, 2.00000000e01],
                [6.47266626e-02, 1.24023466e03, 2.00000000e01],
                [7.51303112e00, 1.98569125e04, 2.00000000e01],
                [2.98150920e00, 3.05917336e04, 2.00000000e01],
                [3.99029396e-01, 2.04846901e03, 2.00000000e01],
                [1.39595911e00, 6.76267028e03, 2.00000000e01],
                [2.75006701e00, 1.28393723e04, 2.00000000e01],
                [9.47924713e-02, 1.61766251e03, 2.00000000e01],
                [2.56958263e00, 1.84980496e04, 2.00000000e01],
            ]
        ),
        placement=array([0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0]),
        domain=array([0, 0]),
        maintenance=array([False, False]),
        disabled=array([False, False]),
        pinned=array(
            [
                False,
                False,
                False,
                False,
                False,
                False,
                False,
                False,
                False,
                False,
                False,
                False,
                False,
            ]
        ),
        rules=Rules(
            vv_vm=array([0, 12, 11, 3]),
            vv_group=array([0, 0, 0, 1]),
            vv_anti=array([True, False]),
            vv_names=("anti", "together"),
            vh_vm=array([8, 1, 5, 4, 2]),
            vh_rule=array([0, 0, 1, 2, 2]),
            vh_hosts=array([[False, True], [False, True], [False, True]]),
            vh_kind=array([0, 1, 2]),
            vh_names=("must", "must-not", "should"),
        ),
        power=None,
    )
    args = BalanceArgs(threshold=5, max_moves=1)
    plan = run("balance", state, args)
    final = plan.final_placement(state.placement)
    after = imbalance(host_loads(state, final), args.weights, state.host_ok)
    assert after <= plan.objective_before + 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_pinned_vm_on_a_host_in_maintenance_is_unresolved(name: str) -> None:
    """Regression (found by fuzzing ``xdrs plan``): the pinned VM stayed on the host in
    maintenance while the plan reported no unresolved VM."""
    state = build(
        [(16, 65536)] * 3,
        [(2, 8192, 0.5, 4096, 0), (2, 8192, 0.5, 4096, 0), (2, 8192, 0.5, 4096, 1)],
        maintenance=[True, False, False],
        pinned=[True, False, False],
    )
    plan = run(name, state)
    assert 0 not in plan.vm.tolist()
    assert plan.unresolved.tolist() == [0]
    assert any("pinned" in n for n in plan.notes)


def test_pinned_vm_in_a_broken_rule_leaves_the_move_to_its_partner() -> None:
    # v0 (pinned) and v1 share host 0 under anti-affinity: v1 moves, nothing is unresolved
    rules = Rules.build(2, vv=[("apart", True, [0, 1])])
    state = build(
        [(16, 65536)] * 2,
        [(2, 8192, 0.5, 4096, 0), (1, 1024, 0.5, 512, 0)],
        pinned=[True, False],
        rules=rules,
    )
    plan = run("evacuate", state)
    assert plan.vm.tolist() == [1] and plan.reason.tolist() == [Reason.RULE]
    assert plan.unresolved.size == 0


def test_pinned_vm_in_a_rule_nobody_can_mend_is_unresolved() -> None:
    # both members pinned on one host: the rule stays broken and both are reported
    rules = Rules.build(2, vv=[("apart", True, [0, 1])])
    state = build(
        [(16, 65536)] * 2,
        [(2, 8192, 0.5, 4096, 0), (1, 1024, 0.5, 512, 0)],
        pinned=[True, True],
        rules=rules,
    )
    plan = run("evacuate", state)
    assert plan.n_moves == 0
    assert sorted(plan.unresolved.tolist()) == [0, 1]
