"""Automation levels (property tests over random plans), the policy file and its reload."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.events import Move, Recommendation
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.limits import Limits
from xdrs.daemon.picture import Picture
from xdrs.daemon.policy import MANDATORY, Policy, PolicyError, PolicyFile, load_policy, mandatory

REASONS = ["rule", "maintenance", "capacity", "overload", "imbalance", "consolidation",
           "make_room"]  # fmt: skip
VMS = [f"v{i}" for i in range(6)]


class Platform:
    """A mover that only notes what it was asked to do (the property is about the decision,
    made before any platform call)."""

    def __init__(self) -> None:
        self.calls: list[Move] = []

    def owns(self, cluster: str) -> bool:
        return True

    def move(self, rec, m):
        raise AssertionError("not reached: the picture has no hosts, every move waits")


@st.composite
def plans(draw):
    n = draw(st.integers(1, 12))
    moves = [Move(f"r/{i}", draw(st.sampled_from(VMS)), "h0", "h1",
                  draw(st.sampled_from(REASONS))) for i in range(n)]  # fmt: skip
    return Recommendation("r", draw(st.sampled_from(["a", "b"])), "imbalance", "balance",
                          time.time(), 1.0, 0.5, moves)  # fmt: skip


policies = st.builds(
    Policy,
    default=st.sampled_from(["manual", "partial", "full"]),
    clusters=st.dictionaries(st.sampled_from(["a", "b"]),
                             st.sampled_from(["manual", "partial", "full"])),
    vms=st.dictionaries(st.sampled_from(VMS), st.sampled_from(["never", "ask"])),
)  # fmt: skip


def _sorted_by_daemon(policy: Policy, rec: Recommendation) -> tuple[set, set, set]:
    """(queued to run, held for approval, skipped) keys after the daemon received ``rec``."""
    records = []
    d = Rebalancer(Platform(), PolicyFile(policy=policy), Limits(), Picture(), time.monotonic,
                   lambda r, c: records.append(r) or True)  # fmt: skip
    d.receive(rec)
    run = {m.key for r in d.executor.runs.values() for m in r.todo.values()}
    held = {r.key for r in records if r.status == "held"}
    skipped = {r.key for r in records if r.status == "skipped"}
    return run, held, skipped


@settings(max_examples=300, deadline=None)
@given(plans(), policies)
def test_levels_decide_every_move_as_drs_does(rec, policy):
    run, held, skipped = _sorted_by_daemon(policy, rec)
    by_key = {m.key: m for m in rec.moves}
    assert run | held | skipped == set(by_key) and not (run & held or run & skipped)
    level = policy.level(rec.cluster)
    for k in run:
        m = by_key[k]
        assert policy.vms.get(m.vm) is None  # never-move and always-ask VMs never run
        assert level != "manual"  # manual: nothing runs unapproved
        if level == "partial":  # partial: only mandatory moves run unapproved
            assert mandatory(rec, m)
    for k in skipped:
        assert policy.vms.get(by_key[k].vm) == "never"
    for m in rec.moves:
        if policy.vms.get(m.vm) == "never":
            assert m.key in skipped


def test_make_room_is_mandatory_only_beside_a_mandatory_move():
    def rec(*reasons):
        return Recommendation("r", "a", "t", "s", 0.0, 0.0, 0.0,
                              [Move(f"r/{i}", f"v{i}", "h0", "h1", x)
                               for i, x in enumerate(reasons)])  # fmt: skip

    r = rec("make_room", "maintenance")
    assert mandatory(r, r.moves[0]) and "maintenance" in MANDATORY
    r = rec("make_room", "imbalance")
    assert not mandatory(r, r.moves[0])


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ('{"default": "auto"}', ".json", ".default: expected one of manual, partial, full, got 'auto'"),
    ('{"clusters": {"c": "ful"}}', ".json", ".clusters['c']: expected one of manual"),
    ('{"vms": {"v": "always"}}', ".json", ".vms['v']: expected one of never, ask"),
    ('{"vms": []}', ".json", ".vms: expected an object"),
    ('{"colour": 1}', ".json", "unknown field 'colour'"),
    ('{"format": "x"}', ".json", ".format: expected 'xdrs-automation/1'"),
    ("[1, 2]", ".json", ": expected an object, got list"),
    ("{", ".json", "not valid"),
    ("default: [", ".yaml", "not valid"),
], ids=["level", "cluster", "vm", "vms-type", "unknown", "format", "list", "json",
        "yaml"])  # fmt: skip
def test_a_bad_policy_file_is_one_error_naming_file_and_field(tmp_path, text, suffix, message):
    path = tmp_path / f"automation{suffix}"
    path.write_text(text)
    with pytest.raises(PolicyError) as e:
        load_policy(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value)


def test_yaml_file_and_reload_when_it_changes_keeping_the_last_valid(tmp_path):
    path = tmp_path / "automation.yaml"
    path.write_text("default: manual\nclusters: {c1: full}\nvms: {v9: never}\n")
    pf = PolicyFile(path)
    p = pf.current()
    assert (p.level("c0"), p.level("c1"), p.vms) == ("manual", "full", {"v9": "never"})
    path.write_text("default: partial\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime
    assert pf.current().level("c1") == "partial"
    path.write_text("default: sometimes\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert pf.current().level("c1") == "partial"  # the invalid edit is not taken
    assert "default: expected one of" in pf.error
