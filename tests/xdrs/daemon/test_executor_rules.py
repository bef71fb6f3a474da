"""A queued move that a rule arriving meanwhile forbids is skipped with the rule named, and
the engine plans again on the rules (the replay platform with the real engine)."""

from __future__ import annotations

from collectors.events import Rule, RulesEvent
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import PolicyFile

from .lab import Lab, host, vm
from .sim import Bench

QUIET = {"vm_cooldown_s": 0.0, "host_hold_s": 0.0, "backoff_s": 0.0, "metric_age_s": 1e9}


def test_a_rule_that_arrives_while_a_move_waits_skips_it_naming_the_rule():
    lab = Lab(vms=16, limits=Limits(per_host=1, **QUIET))
    lab.daemon.receive(lab.rec("r1", (0, 0, 1), (4, 0, 2), (8, 0, 3), (12, 0, 1)))
    lab.step()  # r1/0 runs; the others wait behind the per-host limit on h0
    lab.rules(Rule("spread", "anti_affinity", [vm(4), vm(2)]),  # v2 is on h2
              Rule("lic", "vm_host", [vm(12)], "must", [host(0), host(3)]))  # fmt: skip
    lab.run()
    last = lab.last()
    assert last["r1/1"].status == "skipped"
    assert last["r1/1"].error == ("rule: moving VM v4 to h2 would break anti-affinity rule "
                                  "'spread' (VM v2 is on h2)")  # fmt: skip
    assert last["r1/3"].error == ("rule: moving VM v12 to h1 would break VM-host must rule 'lic' "
                                  "(it must run on its hosts, not h1)")  # fmt: skip
    assert last["r1/2"].status == "ok"
    assert lab.mover.calls == ["r1/0", "r1/2"]
    assert lab.daemon.counts.skipped_by == {"rule": 2}


def test_the_dry_run_says_which_rule_would_skip_a_move():
    lab = Lab(vms=8)
    lab.rules(Rule("db", "affinity", [vm(0), vm(4)]))  # both on h0
    lines: list[str] = []
    dry = Rebalancer(lab.mover, PolicyFile(), lab.limits, lab.picture, lab.clock.now,
                     lab.record, lab.clock.wall, dry_run=lines.append)  # fmt: skip
    dry.receive(lab.rec("r1", (0, 0, 1), (1, 1, 2)))
    assert "would skip: rule: moving VM v0 to h1 would break affinity rule 'db'" in lines[1]
    assert lines[2].endswith("rate none") and ": would run;" in lines[2]
    assert lab.journal == [] and lab.mover.calls == []


def test_a_skip_for_a_rule_ends_the_engines_wait_and_it_plans_with_the_rule():
    b = Bench(limits=Limits(**QUIET))
    rec = b.plan("c0")
    assert rec is not None
    m = rec.moves[0]
    t = b.picture.tables["c0"]
    mate = next(v for v, h in zip(t.vm_ids, t.vm_host, strict=True) if h == m.src and v != m.vm)
    rules = RulesEvent("c0", [Rule("together", "affinity", [m.vm, mate])])
    b.engine.apply(rules)  # the inventory topic brings the rule to both
    b.picture.apply(rules, b.clock.monotonic())
    b.daemon.receive(rec)
    b.run_until_idle()
    skip = b.journal[[r.key for r in b.journal].index(m.key)]
    assert skip.status == "skipped"
    assert skip.error == (f"rule: moving VM {m.vm} to {m.dst} would break affinity rule "
                          f"'together' (its group is on {m.src})")  # fmt: skip
    assert m.key not in b.mover.calls
    assert b.engine.clocks["c0"].pending == set()  # a result: the engine plans again
    b.metrics()
    b.clock.sleep(30.0)
    again = b.plan("c0")
    assert again is not None  # still out of balance: the first move did not run
    assert {x.vm for x in again.moves}.isdisjoint({m.vm, mate})  # the pair stays together
    assert b.daemon.counts.skipped_by.get("rule") == 1
