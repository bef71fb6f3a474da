"""A policy changed at run time applies to the moves already queued: asked again just
before a move starts (property test over random plans and changes, on the lab's clock)."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.events import Approval
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import Policy, PolicyFile, verdict

from .lab import Lab, vm

QUIET = {"vm_cooldown_s": 0.0, "host_hold_s": 0.0, "backoff_s": 0.0, "metric_age_s": 1e9}
REASONS = ["rule", "maintenance", "capacity", "overload", "imbalance", "consolidation",
           "make_room"]  # fmt: skip
HOSTS, VMS = 5, 8


def _queued(per_host: int = 1) -> Lab:
    """Four moves off h0 queued behind a per-host limit of 1 (the first one started)."""
    lab = Lab(vms=16, limits=Limits(per_host=per_host, **QUIET))
    lab.daemon.receive(lab.rec("r1", (0, 0, 1), (4, 0, 2), (8, 0, 3), (12, 0, 1)))
    lab.step()
    assert lab.mover.calls == ["r1/0"] and len(lab.daemon.executor.waiting) == 3
    return lab


def test_a_vm_set_to_never_after_its_move_was_queued_is_skipped_saying_so():
    lab = _queued()
    lab.policy_file.set(Policy(vms={vm(12): "never"}))
    lab.run()
    assert lab.mover.calls == ["r1/0", "r1/1", "r1/2"]
    r = lab.last()["r1/3"]
    assert (r.status, r.error) == (
        "skipped", "never: this VM is never moved (set after the move was queued)")  # fmt: skip
    assert lab.daemon.counts.skipped_by == {"never": 1}


def test_a_switch_to_manual_puts_queued_moves_back_to_approval_and_they_can_be_approved():
    lab = _queued()
    lab.policy_file.set(Policy(default="manual"))
    lab.step()  # the change is seen at once, by every queued move (not only the next ready)
    assert lab.mover.calls == ["r1/0"]  # the one in flight runs to its end
    held = {r.key: r.error for r in lab.journal if r.status == "held"}
    assert held == dict.fromkeys(
        ["r1/1", "r1/2", "r1/3"],
        "awaiting approval: cluster automation is manual (changed after the move was queued)",
    )
    assert lab.daemon.held["r1"][1] == {"r1/1", "r1/2", "r1/3"}
    assert not lab.daemon.executor.waiting and lab.daemon.executor.idle()
    assert lab.last()["r1/0"].status == "ok"
    assert lab.daemon.decide(Approval("r1", "c0", "approve", ["r1/1", "r1/3"])) == ""
    lab.run()
    assert lab.mover.calls == ["r1/0", "r1/1", "r1/3"]  # approved: they run under manual
    assert lab.last()["r1/2"].status == "held"
    assert lab.daemon.decide(Approval("r1", "c0", "reject", by="ops")) == ""
    assert lab.last()["r1/2"].error == "rejected: by ops"


def test_an_approved_move_still_waits_behind_limits_and_then_runs_but_never_wins():
    lab = Lab(vms=16, limits=Limits(per_host=1, **QUIET), policy=Policy(default="manual"))
    lab.daemon.receive(lab.rec("r1", (0, 0, 1), (4, 0, 2), (8, 0, 3)))
    assert lab.daemon.decide(Approval("r1", "c0", "approve")) == ""
    lab.step()
    assert lab.mover.calls == ["r1/0"]
    lab.policy_file.set(Policy(default="manual", vms={vm(8): "never", vm(4): "ask"}))
    lab.run()
    assert lab.mover.calls == ["r1/0", "r1/1"]  # approved, even though v4 now always asks
    assert lab.last()["r1/2"].error.startswith("never: ")


def test_a_switch_to_partial_keeps_mandatory_moves_running():
    lab = Lab(hosts=5, vms=20, limits=Limits(per_host=1, **QUIET))
    lab.daemon.receive(lab.rec("r1", (0, 0, 1), (5, 0, 2, "maintenance"), (10, 0, 3),
                               (15, 0, 4, "make_room")))  # fmt: skip
    lab.step()
    lab.policy_file.set(Policy(default="partial"))
    lab.run()
    assert lab.mover.calls == ["r1/0", "r1/1", "r1/3"]  # make_room beside a maintenance move
    assert lab.last()["r1/2"].status == "held"


def test_the_policy_file_changing_on_disk_is_seen_before_the_next_start(tmp_path):
    path = tmp_path / "automation.json"
    path.write_text('{"default": "full"}')
    lab = _queued()
    lab.daemon.executor.policy = PolicyFile(path)  # the daemon's file, as --automation gives
    lab.step()
    assert lab.mover.calls == ["r1/0", "r1/1"]
    path.write_text('{"default": "full", "vms": {"v8": "never", "v12": "never"}}')
    os.utime(path, ns=(0, 10**18))  # a new modification time, whatever the file system's
    lab.run()
    assert lab.mover.calls == ["r1/0", "r1/1"]
    assert {lab.last()[k].status for k in ("r1/2", "r1/3")} == {"skipped"}


@st.composite
def plans(draw):
    """Moves of random VMs (each from where the plan has put it) to another host."""
    where = [i % HOSTS for i in range(VMS)]
    moves = []
    for _ in range(draw(st.integers(1, 12))):
        v = draw(st.integers(0, VMS - 1))
        dst = draw(st.sampled_from([h for h in range(HOSTS) if h != where[v]]))
        moves.append((v, where[v], dst, draw(st.sampled_from(REASONS))))
        where[v] = dst
    return moves


policies = st.builds(
    Policy,
    default=st.sampled_from(["manual", "partial", "full"]),
    clusters=st.dictionaries(st.just("c0"), st.sampled_from(["manual", "partial", "full"])),
    vms=st.dictionaries(st.sampled_from([vm(i) for i in range(VMS)]),
                        st.sampled_from(["never", "ask"])),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(plans(), st.sampled_from([Policy(), Policy(default="partial")]), policies,
       st.integers(0, 4), st.integers(1, 3), st.sets(st.integers(0, 11)))  # fmt: skip
def test_after_a_policy_change_no_never_vm_starts_and_nothing_optional_starts_unapproved(
    moves, before, after, change_at, per_host, approve
):
    lab = Lab(hosts=HOSTS, vms=VMS, limits=Limits(per_host=per_host, per_cluster=2, **QUIET),
              policy=before)  # fmt: skip
    rec = lab.rec("r", *moves)
    lab.daemon.receive(rec)
    for _ in range(change_at):
        lab.step()
    lab.policy_file.set(after)
    mark = len(lab.journal)
    lab.step()
    held = lab.daemon.held.get("r", (rec, set()))[1]
    approved = {k for k in held if int(k.split("/")[1]) in approve}
    if approved:  # an operator approves some of what waits (refused if a VM moved since)
        lab.daemon.decide(Approval("r", "c0", "approve", sorted(approved)))
    lab.run()
    by_key = {m.key: m for m in rec.moves}
    started = [r.key for r in lab.journal[mark:] if r.status == "started"]
    for k in started:
        m = by_key[k]
        assert after.vms.get(m.vm) != "never", (k, m.vm)
        if k not in approved:  # what starts on its own: what the new policy runs
            assert verdict(after, rec, m) == "run", (k, m.reason, after)
    calls_after = lab.mover.calls[len(lab.mover.calls) - len(started) :]
    assert sorted(calls_after) == sorted(started)  # the platform saw exactly those
    last = lab.last()
    assert set(last) == set(by_key)  # every move has a record: none lost by the change
    assert lab.daemon.executor.idle()
    for k, r in last.items():
        assert r.status in ("ok", "skipped", "held"), (k, r)
        if r.status == "held":
            assert k in lab.daemon.held["r"][1]  # and can still be approved or rejected
