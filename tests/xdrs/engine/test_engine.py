"""Engine state and decisions, fed with events directly (no broker: the Kafka loop around
them is tested against the real broker in tests/xdrs/bus)."""

from __future__ import annotations

import numpy as np
import pytest

from collectors.events import (
    ActionResult,
    Deleted,
    HostEvent,
    MetricBatch,
    Rule,
    RulesEvent,
    VmEvent,
)
from placement import metrics
from xdrs.engine.engine import Engine, EngineArgs
from xdrs.engine.table import ClusterTable


def hosts(n=4, cluster="c"):
    return [HostEvent(cluster, f"h{i}", 16, 65536, 1000, vcpu_ratio=4) for i in range(n)]


def vms(n=8, cluster="c", on=lambda j: "h0"):
    return [VmEvent(cluster, f"v{j}", on(j), 2, 4096, 20) for j in range(n)]


def batch(host, ids, cpu, mem, ts=1.0, cluster="c"):
    return MetricBatch(cluster, host, ts, int(ts), ids, list(cpu), list(mem))


def test_absorb_is_an_ewma_per_vm_against_a_reference():
    t = ClusterTable("c", alpha=0.25)
    for e in hosts(1):
        t.put_host(e)
    for e in vms(3):
        t.put_vm(e)
    rng = np.random.default_rng(0)
    ref = {}
    for step in range(20):
        cpu = rng.uniform(0, 100, 3)
        order = rng.permutation(3)  # VMs in any order in a batch
        ids = [f"v{j}" for j in order]
        t.absorb(batch("h0", ids, cpu[order], cpu[order] * 10, ts=float(step)))
        for j in range(3):
            x = cpu[j] / 100 * 2
            ref[j] = x if j not in ref else ref[j] + 0.25 * (x - ref[j])
    got = [t.cpu[t.vm_row[f"v{j}"]] for j in range(3)]
    np.testing.assert_allclose(got, [ref[j] for j in range(3)])


def test_resent_batches_are_skipped_and_unknown_vms_reported():
    t = ClusterTable("c")
    t.put_host(hosts(1)[0])
    t.put_vm(vms(1)[0])
    assert t.absorb(batch("h0", ["v0", "x"], [50, 50], [1, 1], ts=5.0)).unknown == ["x"]
    assert t.absorb(batch("h0", ["v0"], [10], [1], ts=5.0)).stale
    assert t.absorb(batch("h0", ["v0"], [10], [1], ts=4.0)).stale
    assert t.cpu[0] == pytest.approx(1.0)  # 50 % of 2 vCPUs; the resends changed nothing
    assert t.samples == 1


def test_deleting_a_vm_keeps_the_other_rows_right():
    t = ClusterTable("c")
    for e in hosts(2):
        t.put_host(e)
    for e in vms(70, on=lambda j: f"h{j % 2}"):  # past the initial capacity of 64 rows
        t.put_vm(e)
    t.absorb(batch("h0", [f"v{j}" for j in range(70)], [j for j in range(70)], [1] * 70))
    t.delete_vm("v3")
    t.delete_vm("v69")
    t.delete_vm("nope")
    assert t.n_vms == 68 and "v3" not in t.vm_row
    for j in (0, 10, 68):
        row = t.vm_row[f"v{j}"]
        assert t.vm_ids[row] == f"v{j}" and t.vm_host[row] == f"h{j % 2}"
        assert t.cpu[row] == pytest.approx(j / 100 * 2)


def test_to_state_matches_the_events():
    t = ClusterTable("c", alpha=1.0)
    for e in hosts(3):
        t.put_host(e)
    for e in vms(6, on=lambda j: f"h{j % 3}"):
        t.put_vm(e)
    t.put_rules(RulesEvent("c", [Rule("apart", "anti_affinity", ["v0", "v1", "gone"])]))
    for h in range(3):
        ids = [f"v{j}" for j in range(6) if j % 3 == h]
        t.absorb(batch(f"h{h}", ids, [50] * len(ids), [2048] * len(ids)))
    s = t.to_state()
    assert s.host_ids == ("h0", "h1", "h2") and s.n_vms == 6
    np.testing.assert_allclose(s.alloc_cap[0], [64, 65536, 1000])
    np.testing.assert_allclose(s.demand[:, 0], 1.0)
    assert s.placement.tolist() == [0, 1, 2, 0, 1, 2]
    assert s.rules.vv_vm.size == 2  # the unknown member is left out
    assert metrics(s).cpu_load_sd == pytest.approx(0.0)


def _engine(n_vms=8, on=lambda j: "h0", **args):
    e = Engine(EngineArgs(cooldown_s=0.0, **args))
    for ev in hosts() + vms(n_vms, on=on):
        e.apply(ev)
    return e


def _feed(e, n_vms, cpu, on=lambda j: "h0", ts=1.0):
    by_host = {}
    for j in range(n_vms):
        by_host.setdefault(on(j), []).append(j)
    for h, js in by_host.items():
        e.apply(batch(h, [f"v{j}" for j in js], [cpu] * len(js), [2048] * len(js), ts=ts))


def test_no_trigger_until_every_vm_has_demand():
    e = _engine()
    e.apply(batch("h0", ["v0"], [90], [1]))
    assert e.due(0.0) == []
    _feed(e, 8, 90, ts=2.0)
    assert e.due(1.0) == [("c", "overload")]  # 8 x 2 x 0.9 = 14.4 of 16 cores


def test_imbalance_trigger_and_plan():
    e = _engine()
    _feed(e, 8, 40)  # 6.4 cores on h0, nothing elsewhere: sd high, no host over 90 %
    assert e.due(0.0) == [("c", "imbalance")]
    rec = e.recommend("c", "imbalance", 0.0, wall=100.0)
    assert rec is not None and rec.moves and rec.objective_after < rec.objective_before
    assert {m.src for m in rec.moves} == {"h0"}
    assert [m.key for m in rec.moves] == [f"{rec.id}/{i}" for i in range(len(rec.moves))]
    # pending moves hold the next optional run back until their results arrive
    _feed(e, 8, 40, ts=3.0)
    assert e.due(1.0) == []
    first, rest = rec.moves[0], rec.moves[1:]
    e.apply(ActionResult(first.key, rec.id, "c", first.vm, "h0", first.dst, "failed"))
    t = e.tables["c"]
    assert t.vm_host[t.vm_row[first.vm]] == "h0"  # a failed move changes nothing
    assert e.due(2.0) == []  # one move still pending
    for m in rest:
        e.apply(ActionResult(m.key, rec.id, "c", m.vm, m.src, m.dst, "ok"))
    # confirmed moves are in the table at once; the next plan starts from them
    assert all(t.vm_host[t.vm_row[m.vm]] == m.dst for m in rest)
    nxt = e.recommend("c", "imbalance", 3.0) if e.due(3.0) else None
    done = {(m.vm, m.src) for m in rest}
    assert nxt is None or not {(m.vm, m.src) for m in nxt.moves} & done  # no stale re-plan


def test_balanced_cluster_does_not_trigger_until_the_period():
    on = lambda j: f"h{j % 4}"  # noqa: E731
    e = _engine(on=on, period_s=60.0)
    _feed(e, 8, 30, on=on)
    assert e.due(0.0) == [("c", "periodic")]  # the first complete picture is looked at once
    assert e.recommend("c", "periodic", 0.0) is None  # balanced: no move, nothing published
    assert e.due(30.0) == []
    assert e.due(70.0) == [("c", "periodic")]


def test_maintenance_triggers_evacuation_even_while_pending_and_without_demand():
    e = _engine(on=lambda j: f"h{j % 4}")
    e.apply(HostEvent("c", "h1", 16, 65536, 1000, vcpu_ratio=4, maintenance=True))
    assert e.due(0.0) == [("c", "maintenance")]
    rec = e.recommend("c", "maintenance", 0.0)
    assert rec is not None and rec.strategy == "evacuate"
    assert {m.src for m in rec.moves} == {"h1"} and "h1" not in {m.dst for m in rec.moves}


def test_an_evacuation_under_way_is_not_planned_again_until_pending_s():
    e = _engine(on=lambda j: f"h{j % 4}", pending_s=60.0)
    e.apply(HostEvent("c", "h1", 16, 65536, 1000, vcpu_ratio=4, maintenance=True))
    rec = e.recommend("c", "maintenance", 0.0)
    assert rec is not None
    assert e.due(10.0) == []  # its moves are being applied: the same VMs are not re-planned
    e.apply(HostEvent("c", "h2", 16, 65536, 1000, vcpu_ratio=4, maintenance=True))
    assert e.due(11.0) == [("c", "maintenance")]  # a second host preempts
    e.recommend("c", "maintenance", 11.0)
    assert e.due(20.0) == []
    assert e.due(80.0) == [("c", "maintenance")]  # nothing reported moved: looked at again


def test_a_host_whose_metrics_stopped_is_held():
    """h0 is overloaded and h1 empty, but h1's metrics stopped: nothing goes to h1; once h0's
    stop too, nothing leaves h0; h1's return makes it a destination again."""
    e = _engine(n_vms=8, on=lambda j: "h0", stale_s=600.0)
    ids = [f"v{j}" for j in range(8)]

    def step(ts, silent=()):
        if "h0" not in silent:
            e.apply(batch("h0", ids, [100.0] * 8, [100.0] * 8, ts=ts))
        for h in ("h1", "h2", "h3"):
            if h not in silent:
                e.apply(batch(h, [], [], [], ts=ts))

    step(300.0)
    step(1200.0, silent=("h1",))  # h1 last heard at 300: 900 s behind
    rec = e.recommend("c", "overload", 0.0)
    assert rec is not None and "h1" not in {m.dst for m in rec.moves}
    e.clocks["c"].pending.clear()
    step(2400.0, silent=("h1", "h0"))  # h0 is 1,200 s behind as well
    assert e.recommend("c", "overload", 10.0) is None  # its VMs stay where they are
    step(2700.0)
    rec = e.recommend("c", "overload", 20.0)
    assert rec is not None and "h1" in {m.dst for m in rec.moves}


def test_cooldown_spaces_optimiser_runs():
    e = Engine(EngineArgs(cooldown_s=10.0))
    for ev in hosts() + vms():
        e.apply(ev)
    _feed(e, 8, 40)
    e.recommend("c", "imbalance", 100.0)
    e.apply(ActionResult("x", "y", "c", "v0", "h0", "h1", "ok"))
    e.clocks["c"].pending.clear()
    assert e.due(105.0) == []
    assert e.due(111.0) != []


def test_deleted_host_with_vms_gives_no_recommendation_not_a_crash():
    e = _engine(on=lambda j: f"h{j % 4}")
    _feed(e, 8, 40, on=lambda j: f"h{j % 4}")
    e.apply(Deleted("c", "host", "h3"))
    e.recommend("c", "periodic", 0.0)  # must not raise
    s = e.tables["c"].to_state()  # the VMs of the deleted host are left out
    assert s.n_hosts == 3 and s.n_vms == 6


@pytest.mark.parametrize(
    ("event", "category"),
    [
        (batch("h0", ["v0"], [1], [1], cluster="other"), "unknown_cluster"),
        (batch("h0", ["v0", "ghost"], [1, 1], [1, 1]), "unknown_vm"),
    ],
)
def test_metrics_that_cannot_be_placed_are_reported(event, category):
    e = _engine()
    assert e.apply(event)[0] == category


def test_bad_args_are_refused():
    with pytest.raises(ValueError, match="threshold"):
        Engine(EngineArgs(threshold=7))
    with pytest.raises(ValueError, match="alpha"):
        Engine(EngineArgs(alpha=0))
