"""The checks before a move, on the daemon's picture: hard placement rules, named in the
reason, judged as the placement core judges them (a property compares the two)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.events import Move, Rule
from placement.constraints import AFFINITY, ANTI_AFFINITY, HOST_RULE, PINNED, reasons
from xdrs.daemon.picture import broken_rule

from .lab import Lab, host, vm

RULE_BITS = PINNED | HOST_RULE | ANTI_AFFINITY | AFFINITY


def _move(v: int, src: int, dst: int, key: str = "r/0") -> Move:
    return Move(key, vm(v), host(src), host(dst), "imbalance")


def _refuse(lab: Lab, m: Move, flying: tuple[Move, ...] = ()) -> str:
    incoming = [f.vm for f in flying if f.dst == m.dst]
    return lab.picture.refuse("c0", m, incoming, 0.0, 1e9, flying=flying)


def anti(name: str, *vms: int) -> Rule:
    return Rule(name, "anti_affinity", [vm(i) for i in vms])


def together(name: str, *vms: int) -> Rule:
    return Rule(name, "affinity", [vm(i) for i in vms])


def vm_host(name: str, kind: str, vms: list[int], hosts: list[int]) -> Rule:
    return Rule(name, "vm_host", [vm(i) for i in vms], kind, [host(h) for h in hosts])  # type: ignore[arg-type]


# round robin over 4 hosts: v0 h0, v1 h1, v2 h2, v3 h3, v4 h0, v5 h1, ...
CASES = [
    ([anti("spread", 0, 1)], _move(0, 0, 1),
     "rule: moving VM v0 to h1 would break anti-affinity rule 'spread' (VM v1 is on h1)"),
    ([anti("spread", 0, 1)], _move(0, 0, 2), ""),
    ([together("db", 0, 4)], _move(0, 0, 1),
     "rule: moving VM v0 to h1 would break affinity rule 'db' (its group is on h0)"),
    ([together("db", 0, 5)], _move(0, 0, 1), ""),  # joins its group: repairs a split
    ([together("alone", 0, 99)], _move(0, 0, 1), ""),  # its only other member is unknown
    ([vm_host("lic", "must", [0], [0, 2])], _move(0, 0, 1),
     "rule: moving VM v0 to h1 would break VM-host must rule 'lic' (it must run on its hosts, "
     "not h1)"),
    ([vm_host("lic", "must", [0], [0, 2])], _move(0, 0, 2), ""),
    ([vm_host("no-h3", "must_not", [0, 1], [3])], _move(1, 1, 3),
     "rule: moving VM v1 to h3 would break VM-host must_not rule 'no-h3' (it may not run on h3)"),
    ([vm_host("soft", "should", [0], [0]), vm_host("soft2", "should_not", [0], [1])],
     _move(0, 0, 1), ""),  # soft rules never refuse a move
    ([anti("other", 2, 3)], _move(0, 0, 3), ""),  # a rule of other VMs
]  # fmt: skip


@pytest.mark.parametrize(("rules", "move", "why"), CASES, ids=[
    "anti-affinity", "anti-affinity-ok", "affinity-split", "affinity-join", "affinity-alone",
    "must", "must-ok", "must-not", "should", "other-vms"])  # fmt: skip
def test_a_move_that_would_break_a_hard_rule_is_refused_naming_it(rules, move, why):
    lab = Lab(vms=8)
    lab.rules(*rules)
    assert _refuse(lab, move) == why


def test_a_pinned_vm_is_not_moved():
    lab = Lab(vms=8, pinned=frozenset({2}))
    assert _refuse(lab, _move(2, 2, 0)) == "rule: VM v2 is pinned"
    assert _refuse(lab, _move(3, 3, 0)) == ""


def test_migrations_in_flight_count_where_they_land():
    lab = Lab(vms=8)
    lab.rules(anti("spread", 0, 1))
    flying = (_move(1, 1, 2, "r/1"),)  # v1 is on its way from h1 to h2
    assert "anti-affinity rule 'spread' (VM v1 is on h2)" in _refuse(lab, _move(0, 0, 2), flying)
    assert _refuse(lab, _move(0, 0, 1), flying) == ""  # h1 is being left


def test_a_rule_naming_a_host_or_vm_the_inventory_lacks_judges_the_rest():
    lab = Lab(vms=8)
    lab.rules(Rule("lic", "vm_host", [vm(0), "gone-vm"], "must", [host(2), "gone-host"]))
    assert "VM-host must rule 'lic'" in _refuse(lab, _move(0, 0, 1))
    assert _refuse(lab, _move(0, 0, 2)) == ""


def test_a_capacity_refusal_still_comes_after_the_rules():
    lab = Lab(vms=8)
    lab.rules(anti("spread", 0, 1))
    t = lab.picture.tables["c0"]
    t.alloc[: t.n_vms, 1] = 1e9  # nothing fits anywhere now
    assert _refuse(lab, _move(0, 0, 1)).startswith("rule: ")
    assert _refuse(lab, _move(0, 0, 2)).startswith("no longer fits: memory allocation")


@st.composite
def clusters(draw):
    """A placement of 8 VMs on 4 hosts, pinned VMs, random hard and soft rules, a move."""
    n_v, n_h = 8, 4
    place = draw(st.lists(st.integers(0, n_h - 1), min_size=n_v, max_size=n_v))
    pinned = draw(st.frozensets(st.integers(0, n_v - 1), max_size=2))
    members = st.lists(st.integers(0, n_v - 1), min_size=1, max_size=4, unique=True)
    rules = []
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["affinity", "anti_affinity", "vm_host"]))
        vms = [vm(v) for v in draw(members)]
        if kind == "vm_host":
            hosts = draw(st.lists(st.integers(0, n_h - 1), max_size=n_h, unique=True))
            rule_kind = draw(st.sampled_from(["must", "must_not", "should", "should_not"]))
            rules.append(Rule(f"r{i}", kind, vms, rule_kind, [host(h) for h in hosts]))
        else:
            rules.append(Rule(f"r{i}", kind, vms))
    v = draw(st.integers(0, n_v - 1))
    dst = draw(st.sampled_from([h for h in range(n_h) if h != place[v]]))
    return place, pinned, rules, v, dst


@settings(max_examples=300, deadline=None)
@given(clusters())
def test_the_rule_check_agrees_with_the_placement_core(cluster):
    place, pinned, rules, v, dst = cluster
    lab = Lab(vms=len(place), placement=place, pinned=pinned)
    lab.rules(*rules)
    t = lab.picture.tables["c0"]
    state = t.to_state()
    row = state.vm_ids.index(vm(v))
    bits = int(reasons(state, np.array([row]))[0, state.host_ids.index(host(dst))])
    why = broken_rule(t, _move(v, place[v], dst))
    assert bool(why) == bool(bits & RULE_BITS), (why, bits)
    assert not why or why.startswith("rule: ")
