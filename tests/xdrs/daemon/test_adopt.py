"""A move still migrating when the daemon restarts: adopted, not settled at once.

vMotion and Nova's live migration outlive the daemon that asked for them. A restarted
daemon adopts a ``started`` move without a result whose record is younger than
``timeout_s`` (on its clock): it holds its slots, the platform is not called for it again,
and it ends when the picture shows its VM on the destination (``ok``) or at its timeout
(``failed``, ``Interrupted``). An older one is settled at once, as before. All on the lab's
manual clock: the platform's late landing is an inventory event the test applies.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.events import ActionResult, Recommendation, VmEvent, move_result
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.limits import Limits

from .lab import CLUSTER, WALL0, Lab, host, vm

QUIET = {"vm_cooldown_s": 0.0, "host_hold_s": 0.0, "metric_age_s": 1e9}


def _restart(lab: Lab, history: list[ActionResult], recs: list[Recommendation],
             rate: float = 1.0, dry_run: list[str] | None = None) -> None:  # fmt: skip
    """A new daemon over the lab's platform and picture, rebuilt from ``history``; the old
    one's migrations (blocked in the mover) keep running, as a platform's would."""
    lab.daemon.close()
    lab.daemon = Rebalancer(lab.mover, lab.policy_file, lab.limits, lab.picture,
                            lab.clock.now, lab.record, lab.clock.wall,
                            dry_run=None if dry_run is None else dry_run.append,
                            clock_rate=rate)  # fmt: skip
    lab.daemon.restore(history, recs)


def _started(lab: Lab, rec: Recommendation, i: int, wall_age: float) -> ActionResult:
    """The ``started`` record of ``rec.moves[i]`` written ``wall_age`` wall seconds ago."""
    r = move_result(rec, rec.moves[i])
    return msgspec.structs.replace(r, status="started", ts=lab.clock.wall() - wall_age)


def _land(lab: Lab, i: int, h: int) -> None:
    """The platform reports VM ``i`` on host ``h`` (its inventory event)."""
    lab.picture.apply(VmEvent(CLUSTER, vm(i), host(h), 1, 1024), lab.clock.t)


def test_an_adopted_move_lands_later_ok_and_holds_its_slots_until_then():
    lab = Lab(limits=Limits(per_host=1, timeout_s=100.0, **QUIET))
    lab.mover.blocked.add("r1/0")
    r1 = lab.rec("r1", (0, 0, 1))
    lab.daemon.receive(r1)
    lab.step(5.0)  # r1/0 started at 0; the daemon dies at 5, its migration runs on
    _restart(lab, list(lab.journal), [r1])
    assert lab.last()["r1/0"].status == "started"  # not settled at the restart
    ex = lab.daemon.executor
    assert list(ex.flights) == ["r1/0"] and ex.gate.host == {host(0): 1, host(1): 1}
    lab.daemon.receive(lab.rec("r2", (2, 2, 1)))  # another VM onto the same host
    for _ in range(10):
        lab.step()
    assert "r2/0" not in lab.last()  # waits: h1's one slot is the adopted move's
    assert ex.waiting["r2/0"] == f"per-host limit (1) on {host(1)}"
    _land(lab, 0, 1)  # t = 15: the platform's migration ends
    lab.run()
    done = lab.last()["r1/0"]
    assert (done.status, done.error) == ("ok", "adopted after restart: the VM is on the "
                                               "destination")  # fmt: skip
    assert done.ts == WALL0 + 15.0
    assert lab.last()["r2/0"].status == "ok"
    assert lab.starts() == [(5.0, "r1/0"), (15.0, "r2/0")]  # r1/0 stamped when adopted
    assert lab.mover.calls == ["r1/0", "r2/0"]  # the adopted move was never issued again
    assert lab.daemon.counts.by_status == {"ok": 2, "started": 1}
    lab.mover.release("r1/0")  # the first daemon's call returns; nobody is listening


def test_the_later_move_of_an_adopted_vm_waits_for_it_instead_of_being_skipped():
    lab = Lab(limits=Limits(timeout_s=100.0, **QUIET))
    r1 = lab.rec("r1", (0, 0, 1), (0, 1, 2))  # VM 0: h0 -> h1 -> h2
    history = [_started(lab, r1, 0, 3.0)]
    _restart(lab, history, [r1])
    lab.daemon.receive(r1)  # a restarted daemon receives the recent recommendations again
    for _ in range(5):
        lab.step()
    assert "r1/1" not in lab.last() and lab.mover.calls == []  # not stale, not started
    _land(lab, 0, 1)
    lab.run()
    got = lab.last()
    assert got["r1/0"].status == "ok" and got["r1/1"].status == "ok", got
    assert lab.mover.calls == ["r1/1"]
    assert lab.picture.host_of(CLUSTER, vm(0)) == host(2)


@pytest.mark.parametrize(("rate", "fails_at"), [(1.0, 98.0), (10.0, 71.0)],
                         ids=["real-time", "clock-10x"])  # fmt: skip
def test_an_adopted_move_that_never_lands_fails_interrupted_at_its_timeout(rate, fails_at):
    """Started 3 wall seconds before the restart at t = 0: 3 s (or 30 s at clock_rate 10)
    of its 100 s timeout already spent on the daemon's clock, so the first tick past it is
    at 98 (or 71)."""
    lab = Lab(limits=Limits(per_host=1, timeout_s=100.0, backoff_s=1e6, **QUIET))
    r1 = lab.rec("r1", (0, 0, 1))
    _restart(lab, [_started(lab, r1, 0, 3.0)], [r1], rate=rate)
    ex = lab.daemon.executor
    while "r1/0" not in lab.last():
        assert "r1/0" in ex.flights and ex.gate.total == 1
        lab.step()
    r = lab.last()["r1/0"]
    assert lab.clock.t - 1.0 == fails_at  # the tick that settled it
    assert r.status == "failed" and r.error == (
        "Interrupted: the daemon stopped during the migration; no result 100 s after its "
        f"start, after restart, VM on {host(0)}"
    )
    assert ex.flights == {} and ex.gate.total == 0 and lab.mover.calls == []
    assert lab.daemon.counts.failed_by == {"interrupted": 1}
    lab.daemon.receive(lab.rec("r2", (0, 0, 1)))  # no back-off: the platform did not fail
    lab.run()
    assert lab.last()["r2/0"].status == "ok" and lab.mover.calls == ["r2/0"]


@pytest.mark.parametrize(("wall_age", "rate"), [(150.0, 1.0), (15.0, 10.0)],
                         ids=["older", "older-on-a-10x-clock"])  # fmt: skip
def test_a_started_move_older_than_the_timeout_is_settled_at_once(wall_age, rate):
    lab = Lab(limits=Limits(per_host=1, timeout_s=100.0, **QUIET))
    r1 = lab.rec("r1", (0, 0, 1))
    _restart(lab, [_started(lab, r1, 0, wall_age)], [r1], rate=rate)
    r = lab.last()["r1/0"]  # before any tick
    assert r.status == "failed" and r.error == (
        f"Interrupted: the daemon stopped during the migration; VM on {host(0)}"
    )
    ex = lab.daemon.executor
    assert ex.flights == {} and ex.gate.host == {}
    lab.daemon.receive(lab.rec("r2", (2, 2, 1)))
    lab.step()
    assert lab.starts() == [(0.0, "r2/0")]  # h1's slot was free at once


def test_a_young_started_move_already_landed_is_ok_at_once():
    lab = Lab(limits=Limits(per_host=1, timeout_s=100.0, **QUIET))
    r1 = lab.rec("r1", (0, 0, 1))
    _land(lab, 0, 1)
    _restart(lab, [_started(lab, r1, 0, 1.0)], [r1])
    r = lab.last()["r1/0"]
    assert (r.status, r.error) == ("ok", "") and lab.daemon.executor.flights == {}


def test_a_started_move_of_an_unknown_recommendation_is_settled_at_once():
    """Without its recommendation the daemon cannot place it in a plan: as before."""
    lab = Lab(limits=Limits(timeout_s=100.0, **QUIET))
    r1 = lab.rec("r1", (0, 0, 1))
    _restart(lab, [_started(lab, r1, 0, 1.0)], [])
    assert lab.last()["r1/0"].status == "failed" and lab.daemon.executor.flights == {}


def test_the_dry_run_adopts_nothing_and_records_nothing():
    lab = Lab(limits=Limits(timeout_s=100.0, **QUIET))
    r1 = lab.rec("r1", (0, 0, 1))
    history = [_started(lab, r1, 0, 1.0)]
    _restart(lab, history, [r1], dry_run=[])
    lab.step()
    assert lab.journal == [] and lab.daemon.executor.flights == {}


def test_a_move_of_a_cluster_the_daemon_does_not_own_is_left_to_its_daemon():
    lab = Lab(limits=Limits(timeout_s=100.0, **QUIET))
    r1 = msgspec.structs.replace(lab.rec("r1", (0, 0, 1)), cluster="other")
    other = msgspec.structs.replace(_started(lab, r1, 0, 500.0), cluster="other")
    lab.mover.owns = lambda cluster: cluster == CLUSTER  # type: ignore[method-assign]
    _restart(lab, [other], [r1])
    assert lab.journal == [] and lab.daemon.executor.flights == {}


def test_an_adopted_move_spends_no_rate_token():
    """Burst 1 at one start per 1,000 s: the adopted move is no new start, so a move on
    other hosts starts at the first tick."""
    lab = Lab(limits=Limits(rate_per_s=0.001, burst=1, timeout_s=100.0, **QUIET))
    r1 = lab.rec("r1", (0, 0, 1))
    _restart(lab, [_started(lab, r1, 0, 1.0)], [r1])
    lab.daemon.receive(lab.rec("r2", (2, 2, 3)))
    lab.step()
    assert lab.starts() == [(0.0, "r1/0"), (0.0, "r2/0")]


@settings(max_examples=25, deadline=None)
@given(lands=st.lists(st.one_of(st.none(), st.integers(0, 120)), min_size=1, max_size=4),
       new=st.lists(st.tuples(st.integers(8, 15), st.integers(0, 7)), max_size=6,
                    unique_by=lambda x: x[0]))  # fmt: skip
def test_adopted_and_new_moves_never_exceed_the_per_host_limit(lands, new):
    """Adopted moves ``h(2k) -> h(2k+1)`` (within the limit, as the daemon before left
    them), landing at random times or never, and new moves over the same hosts: at most one
    migration per host at any time of the timeline, each adopted move settled once and
    never issued again."""
    lab = Lab(hosts=8, vms=16, limits=Limits(per_host=1, timeout_s=100.0, **QUIET))
    old = lab.rec("r1", *[(2 * k, 2 * k, 2 * k + 1) for k in range(len(lands))])
    _restart(lab, [_started(lab, old, k, 1.0) for k in range(len(lands))], [old])
    moves = [(i, i % 8, d) for i, d in new if d != i % 8]
    if moves:
        lab.daemon.receive(lab.rec("r2", *moves))
    for t in range(110):
        for k, at in enumerate(lands):
            if at == t:
                _land(lab, 2 * k, 2 * k + 1)
        lab.step()
    assert lab.daemon.executor.idle()
    busy: dict[str, int] = {}
    for s in lab.daemon.executor.timeline:
        for h in (s.src, s.dst):
            busy[h] = busy.get(h, 0) + (1 if s.kind == "start" else -1)
            assert busy[h] <= 1, (s, busy)
    ends = [r.key for r in lab.journal if r.status != "started"]
    assert len(ends) == len(set(ends)) and {f"r1/{k}" for k in range(len(lands))} <= set(ends)
    assert all(k.startswith("r2/") for k in lab.mover.calls)
    lab.daemon.close()
