"""The text report of ``xdrs plan``: unresolved VMs say why they must move and cannot."""

from __future__ import annotations

import pytest

from placement import run
from tests.xdrs.snapshots import doc
from xdrs.report import unresolved_lines
from xdrs.snapshot import parse_snapshot


@pytest.mark.parametrize("strategy", ["balance", "consolidate", "evacuate"])
def test_pinned_vm_on_a_host_in_maintenance_is_reported(strategy: str) -> None:
    """Regression: the pinned VM stayed on the host in maintenance under "unresolved VMs: none"."""
    d = doc()
    d["hosts"][1]["maintenance"] = True
    d["vms"][1]["pinned"] = True  # on h1
    state = parse_snapshot(d)
    plan = run(strategy, state)
    lines = unresolved_lines(state, plan, plan.final_placement(state.placement), None)
    assert lines[0] == "unresolved VMs: 1"
    assert lines[1].startswith("  v1 on h1 (its host is in maintenance; pinned): hosts refused by")
    assert "VM pinned 4" in lines[1]


def test_a_broken_anti_affinity_between_pinned_vms_is_reported() -> None:
    d = doc()
    for v in (0, 2):  # both on h0
        d["vms"][v]["pinned"] = True
    d["rules"] = [{"name": "apart", "type": "anti_affinity", "vms": ["v0", "v2"]}]
    state = parse_snapshot(d)
    plan = run("balance", state)
    lines = unresolved_lines(state, plan, plan.final_placement(state.placement), None)
    assert lines[0] == "unresolved VMs: 2"
    assert all("(breaks an anti-affinity rule; pinned)" in line for line in lines[1:])


def test_nothing_unresolved_says_none() -> None:
    state = parse_snapshot(doc())
    plan = run("balance", state)
    assert unresolved_lines(state, plan, plan.final_placement(state.placement), None) == [
        "unresolved VMs: none"
    ]
