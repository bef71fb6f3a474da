"""Each filter sets its own bit; the hot-path feasibility check agrees with the reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from placement import Capacity, ClusterState, Rules, StateError, reasons
from placement import constraints as c
from placement.rules import MUST, MUST_NOT, RuleError
from placement.workspace import Workspace
from tests.placement.clusters import build, clusters

TWO = [(16, 65536), (16, 65536)]
VM0 = (2, 8192, 0.5, 4096, 0)


def cell(state: ClusterState, vm: int, host: int, cap: Capacity | None = None) -> int:
    return int(reasons(state, np.array([vm]), capacity=cap)[0, host])


CASES = [
    ("ok", dict(), 0),
    ("maintenance", dict(maintenance=[False, True]), c.MAINTENANCE),
    ("disabled", dict(disabled=[False, True]), c.DISABLED),
    ("other-domain", dict(domain=[0, 1]), c.OTHER_DOMAIN),
    ("pinned", dict(pinned=[True, False, False]), c.PINNED),
    ("must", dict(rules=Rules.build(2, vh=[("r", MUST, [0], [0])])), c.HOST_RULE),
    ("must-not", dict(rules=Rules.build(2, vh=[("r", MUST_NOT, [0], [1])])), c.HOST_RULE),
    ("anti", dict(rules=Rules.build(2, vv=[("g", True, [0, 1])])), c.ANTI_AFFINITY),
    ("affinity", dict(rules=Rules.build(2, vv=[("g", False, [0, 2])])), c.AFFINITY),
]


@pytest.mark.parametrize(("kw", "bit"), [(k, b) for _, k, b in CASES], ids=[i for i, _, _ in CASES])
def test_each_filter_sets_its_bit(kw: dict[str, object], bit: int) -> None:
    # VM 0 on host 0, VM 1 on host 1, VM 2 on host 0: ask about VM 0 -> host 1
    state = build(TWO, [VM0, (2, 8192, 0.5, 4096, 1), (2, 8192, 0.5, 4096, 0)], **kw)
    assert cell(state, 0, 1) == bit
    assert cell(state, 0, 0) & c.SAME_HOST


@pytest.mark.parametrize(
    ("vm", "bit"),
    [((20, 1024, 0.1, 512, 0), c.ALLOC_CPU), ((1, 70000, 0.1, 512, 0), c.ALLOC_MEM)],
    ids=["cpu", "mem"],
)
def test_allocation_capacity_bits(vm: tuple[float, float, float, float, int], bit: int) -> None:
    state = build(TWO, [vm])
    assert cell(state, 0, 1) & bit


def test_disk_allocation_bit() -> None:
    state = build(TWO, [VM0], alloc_cap=np.array([[16, 65536, 5.0]] * 2))
    assert cell(state, 0, 1) & c.ALLOC_DISK


def test_headroom_bits_only_with_a_target() -> None:
    state = build(TWO, [(8, 8192, 0.9, 30000, 0), (8, 8192, 0.9, 30000, 1)])
    assert cell(state, 0, 1) == 0
    bits = cell(state, 0, 1, Capacity(0.8, 0.8))
    assert bits == c.HEADROOM_CPU | c.HEADROOM_MEM
    assert c.describe(bits) == [
        "CPU demand above target utilisation",
        "memory demand above target utilisation",
    ]


def test_affinity_group_alone_is_unconstrained() -> None:
    state = build(TWO, [VM0], rules=Rules.build(2, vv=[("g", False, [0])]))
    assert cell(state, 0, 1) == 0


@settings(max_examples=80, deadline=None)
@given(state=clusters())
def test_workspace_feasible_matches_reference(state: ClusterState) -> None:
    cap = Capacity(0.9, 0.95)
    ws = Workspace(state, cap)
    if state.n_vms == 0:
        return
    ref = reasons(state, np.arange(state.n_vms), capacity=cap)
    for v in range(state.n_vms):
        expect = (ref[v] & ~np.uint32(c.PINNED)) == 0  # pinning is checked by the strategies
        np.testing.assert_array_equal(ws.feasible(v), expect, err_msg=f"VM {v}")


@pytest.mark.parametrize(
    ("vv", "vh", "message"),
    [
        ([("apart", True, [0, 1, 0])], [], "rules.vv: VM 0 is listed twice in rule 'apart'"),
        ([], [("r", MUST, [1, 1], [0])], "rules.vh: VM 1 is listed twice in rule 'r'"),
    ],
    ids=["vm-vm", "vm-host"],
)
def test_a_rule_listing_a_vm_twice_is_refused(vv: list, vh: list, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        build(TWO, [VM0, VM0], rules=Rules.build(2, vv=vv, vh=vh))


@pytest.mark.parametrize("value", [np.inf, np.nan, 1e308, -1.0], ids=["inf", "nan", "1e308", "neg"])
def test_make_state_refuses_values_that_would_overflow(value: float) -> None:
    # 1e308 is finite, but two of them on one host sum to inf: nothing above 1e15 gets in
    with pytest.raises(StateError, match=r"phys\[1, 1\]: expected a finite number in 0..1e\+15"):
        build([(16, 65536), (16, value)], [VM0])
