"""The daemon's decisions and execution on the replay platform (no Kafka: ``sim.Bench``)."""

from __future__ import annotations

import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.events import Approval, Move, Recommendation, move_result
from collectors.replay.mover import LinkModel
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import Policy, PolicyFile

from .sim import Bench


def _max_in_flight(timeline, key_of) -> int:
    """Most migrations in flight at once per ``key_of(stamp)`` group, from the timeline."""
    now: dict[object, int] = {}
    worst = 0
    for s in timeline:
        for k in key_of(s):
            now[k] = now.get(k, 0) + (1 if s.kind == "start" else -1)
            worst = max(worst, now[k])
    return worst


def test_converges_with_ten_percent_failures_and_never_exceeds_a_limit():
    limits = Limits(per_host=2, per_cluster=3, total=5, vm_cooldown_s=0, host_hold_s=0,
                    backoff_s=60, metric_age_s=1e9)  # fmt: skip
    b = Bench(limits=limits, model=LinkModel(fail_rate=0.1, dirty_mib_s=200), seed=3)
    first = {c: b.imbalance(c) for c in ("c0", "c1")}
    target = b.engine.view("c0").target
    for _ in range(30):  # the engine re-plans every 30 s of platform time
        recs = [r for c in ("c0", "c1") if (r := b.plan(c)) is not None]
        if not recs:
            break
        for rec in recs:
            b.daemon.receive(rec)
        b.run_until_idle()
        b.metrics()
        b.clock.sleep(30.0)
    for c in ("c0", "c1"):
        assert first[c] > 0.2 and b.imbalance(c) <= target, (c, first[c], b.imbalance(c))
    failed = sum(s == "failed" for s in b.statuses().values())
    assert failed > 0 and b.daemon.counts.by_status["failed"] == failed  # failures counted
    tl = b.daemon.executor.timeline
    assert _max_in_flight(tl, lambda s: (s.src, s.dst)) <= 2
    assert _max_in_flight(tl, lambda s: (s.cluster,)) <= 3
    assert _max_in_flight(tl, lambda s: ("all",)) <= 5
    assert _max_in_flight(tl, lambda s: ("all",)) >= 3  # it does run moves in parallel
    issued = b.mover.calls
    assert len(issued) == len(set(issued))  # no key issued twice
    started = [r.key for r in b.journal if r.status == "started"]
    assert sorted(started) == sorted(issued)  # every call recorded as started, before it


def _rec(moves, cluster="c0", rid="r1", ts=None):
    return Recommendation(rid, cluster, "imbalance", "balance", time.time() if ts is None else ts,
                          1.0, 0.5, moves)  # fmt: skip


def _movable(b: Bench, n: int, reason: str = "imbalance", rid: str = "r1") -> Recommendation:
    """``n`` moves of distinct VMs of c0 from their host to the emptiest host of c0."""
    t = b.picture.tables["c0"]
    hosts = list(t.hosts)
    counts = {h: t.vm_host.count(h) for h in hosts}
    dst = min(hosts, key=counts.get)
    vms = [v for v, h in zip(t.vm_ids, t.vm_host, strict=True) if h != dst][:n]
    moves = [Move(f"{rid}/{i}", v, t.vm_host[t.vm_row[v]], dst, reason)
             for i, v in enumerate(vms)]  # fmt: skip
    return _rec(moves, rid=rid)


def test_partial_runs_mandatory_moves_and_holds_optional_ones_until_approved():
    b = Bench(policy=Policy(default="partial"))
    rec = _movable(b, 2)
    rec = msgspec.structs.replace(rec, moves=[
        msgspec.structs.replace(rec.moves[0], reason="maintenance"), rec.moves[1]])  # fmt: skip
    b.daemon.receive(rec)
    b.run_until_idle()
    assert b.mover.calls == [rec.moves[0].key]
    assert b.statuses()[rec.moves[1].key] == "held"
    assert b.daemon.decide(Approval(rec.id, "c0", "approve")) == ""
    b.run_until_idle()
    assert b.mover.calls == [rec.moves[0].key, rec.moves[1].key]
    assert b.statuses()[rec.moves[1].key] == "ok"
    assert "no move waiting" in b.daemon.decide(Approval(rec.id, "c0", "approve"))  # replayed


def test_an_approval_of_a_changed_placement_is_refused_with_the_reason():
    b = Bench(policy=Policy(default="manual"))
    rec = _movable(b, 1)
    b.daemon.receive(rec)
    m = rec.moves[0]
    other = next(h for h in b.picture.tables["c0"].hosts if h not in (m.src, m.dst))
    b.collector.move(_rec([Move("x/0", m.vm, m.src, other, "imbalance")], rid="x"),
                     Move("x/0", m.vm, m.src, other, "imbalance"))  # fmt: skip
    why = b.daemon.decide(Approval(rec.id, "c0", "approve"))
    assert why == f"approval refused: placement changed: VM {m.vm} is on {other}, not on {m.src}"
    assert b.mover.calls == []
    assert b.statuses()[m.key] == "skipped"


def test_reject_and_never_and_supersede_are_recorded_skipped_with_why():
    b = Bench(policy=Policy(default="manual", vms={}))
    first = _movable(b, 2, rid="r1")
    b.daemon.receive(first)
    second = _movable(b, 1, rid="r2")
    b.daemon.receive(second)  # a newer plan of the cluster replaces the held one
    errors = {r.key: r.error for r in b.journal if r.status == "skipped"}
    assert errors[first.moves[0].key] == "superseded: by recommendation r2"
    assert b.daemon.decide(Approval("r2", "c0", "reject", by="ops")) == ""
    assert {r.key: r.error for r in b.journal}["r2/0"] == "rejected: by ops"
    nb = Bench(policy=Policy(default="full", vms={"c0-vm000000": "never"}))
    t = nb.picture.tables["c0"]
    vm = "c0-vm000000"
    src = t.vm_host[t.vm_row[vm]]
    dst = next(h for h in t.hosts if h != src)
    nb.daemon.receive(_rec([Move("n/0", vm, src, dst, "maintenance")], rid="n"))
    nb.run_until_idle()
    assert nb.mover.calls == [] and nb.statuses()["n/0"] == "skipped"


@pytest.mark.parametrize(("change", "why"), [
    ("stale", "stale: VM"),
    ("metrics", "metrics of host"),
    ("full", "no longer fits"),
    ("expired", "expired"),
], ids=["stale", "old-metrics", "no-room", "expired"])  # fmt: skip
def test_a_move_whose_premises_changed_is_skipped_not_run(change, why):
    b = Bench(limits=Limits(metric_age_s=100.0), scale=1.0)  # real time: metrics stay fresh
    rec = _movable(b, 1)
    m = rec.moves[0]
    if change == "stale":
        rec = _rec([msgspec.structs.replace(m, src=m.dst + "-not")], rid="r1")
    elif change == "metrics":
        for k in b.picture.seen_at:  # the platform's metrics are now 200 s old
            b.picture.seen_at[k] -= 200.0
    elif change == "full":
        t = b.picture.tables["c0"]
        t.alloc[: t.n_vms, 1] = 1e9  # every VM now needs more memory than any host has
    else:
        rec = msgspec.structs.replace(rec, ts=rec.ts - 10_000)
    b.daemon.receive(rec)
    b.run_until_idle()
    assert b.mover.calls == []
    (skip,) = [r for r in b.journal if r.status == "skipped"]
    assert skip.error.startswith(why) or why in skip.error, skip.error


def test_cooldown_and_host_hold_hold_back_another_recommendation():
    b = Bench(limits=Limits(vm_cooldown_s=1e6, host_hold_s=1e6, metric_age_s=1e9))
    rec = _movable(b, 1, rid="r1")
    b.daemon.receive(rec)
    b.run_until_idle()
    m = rec.moves[0]
    assert b.statuses()[m.key] == "ok"
    back = _rec([Move("r2/0", m.vm, m.dst, m.src, "imbalance")], rid="r2")
    b.daemon.receive(back)
    b.run_until_idle()
    (skip,) = [r for r in b.journal if r.key == "r2/0"]
    assert skip.status == "skipped" and skip.error.startswith(f"held: VM {m.vm} was moved")
    assert b.daemon.counts.skipped_by["held"] == 1


def test_restore_never_reissues_and_resolves_interrupted_moves():
    b = Bench()
    rec = _movable(b, 3)
    m0, m1, m2 = rec.moves
    b.collector.move(rec, m0)  # m0 ran; the daemon died before recording its result
    old = time.time() - 1e4  # past the timeout: settled at once (a young one: test_adopt.py)
    records = [msgspec.structs.replace(move_result(rec, m), status="started", ts=old)
               for m in (m0, m1)]  # fmt: skip
    b.daemon = Rebalancer(b.mover, PolicyFile(), b.limits, b.picture, b.clock.monotonic,
                          b.record)  # a restarted daemon  # fmt: skip
    b.daemon.restore(records, [rec])
    final = {r.key: r for r in b.journal}
    assert final[m0.key].status == "ok"
    assert final[m1.key].status == "failed" and final[m1.key].error.startswith("Interrupted")
    b.daemon.receive(rec)  # the recommendation is delivered again
    b.run_until_idle()
    assert b.mover.calls == [m2.key]


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 8), st.sampled_from([0.0, 0.1, 0.5]),
       st.integers(0, 2**16))  # fmt: skip
def test_no_limit_is_ever_exceeded(per_host, per_cluster, total, fail_rate, seed):
    limits = Limits(per_host=per_host, per_cluster=per_cluster, total=total, vm_cooldown_s=0,
                    host_hold_s=0, backoff_s=0, metric_age_s=1e9)  # fmt: skip
    b = Bench(limits=limits, model=LinkModel(fail_rate=fail_rate), seed=seed)
    for rec in [b.plan("c0"), b.plan("c1")]:
        assert rec is not None
        b.daemon.receive(rec)
    b.run_until_idle()
    tl = b.daemon.executor.timeline
    assert tl and len(tl) % 2 == 0  # every start has its end
    assert _max_in_flight(tl, lambda s: (s.src, s.dst)) <= per_host
    assert _max_in_flight(tl, lambda s: (s.cluster,)) <= per_cluster
    assert _max_in_flight(tl, lambda s: ("all",)) <= total
    final = [r for r in b.journal if r.status in ("ok", "failed", "skipped")]
    assert len({r.key for r in final}) == len(final)  # one result per move


def test_the_engine_waits_through_started_and_held_records():
    b = Bench(policy=Policy(default="manual"))
    rec = b.plan("c0")
    assert b.engine.clocks["c0"].pending == {m.key for m in rec.moves}
    b.daemon.receive(rec)  # every move held: the engine still waits for results
    assert b.engine.clocks["c0"].pending == {m.key for m in rec.moves}
    b.daemon.decide(Approval(rec.id, "c0", "reject"))
    assert b.engine.clocks["c0"].pending == set()  # skipped is a result: re-plan
