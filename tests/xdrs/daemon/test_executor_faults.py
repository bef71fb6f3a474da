"""The executor's fault paths and its rate limit, on the lab's manual clock: a migration that
times out (and one that succeeds after), the back-off of a failed VM and its hosts, the skip
after an earlier failure on a host, and the token bucket spacing starts."""

from __future__ import annotations

from xdrs.daemon.limits import Limits

from .lab import Lab, host, vm

QUIET = {"vm_cooldown_s": 0.0, "host_hold_s": 0.0, "metric_age_s": 1e9}


def test_a_migration_without_result_is_failed_timeout_and_keeps_its_slot():
    lab = Lab(limits=Limits(timeout_s=30.0, backoff_s=100.0, per_host=1, **QUIET))
    lab.mover.blocked.add("r1/0")
    lab.daemon.receive(lab.rec("r1", (0, 0, 1)))
    lab.step(31.0)  # started at 0
    assert lab.last()["r1/0"].status == "started"
    lab.step()  # t = 31: past the timeout
    r = lab.last()["r1/0"]
    assert (r.status, r.error) == ("failed", "Timeout: no result after 30 s")
    assert lab.daemon.counts.failed_by == {"timeout": 1}
    ex = lab.daemon.executor
    assert "r1/0" in ex.flights and ex.gate.host == {host(0): 1, host(1): 1}  # slot kept
    assert [s.kind for s in ex.timeline] == ["start"]  # no end while the call runs
    lab.daemon.receive(lab.rec("r2", (4, 0, 2)))  # another VM, off the same source
    lab.step()  # t = 32
    assert "r2/0" not in lab.last()  # neither run nor skipped: h0 is still busy
    assert ex.waiting["r2/0"] == f"per-host limit (1) on {host(0)}"
    lab.release("r1/0", "MigrationFailed: the copy was aborted")
    lab.step()  # t = 33: the late failure ends the flight and changes no record
    assert not ex.flights and ex.gate.host == {host(0): 0, host(1): 0}
    assert [(r.key, r.status) for r in lab.journal if r.key == "r1/0"] == [
        ("r1/0", "started"), ("r1/0", "failed")]  # fmt: skip
    assert lab.picture.host_of("c0", vm(0)) == host(0)
    assert [(s.t, s.kind) for s in ex.timeline if s.key == "r1/0"] == [(0.0, "start"),
                                                                       (33.0, "end")]  # fmt: skip
    # h0 was backed off by the timeout (until 31 + 100): r2's move off it is held back
    assert lab.last()["r2/0"].status == "skipped"
    assert lab.last()["r2/0"].error.startswith(f"held: host {host(0)} is backed off")


def test_a_success_after_the_timeout_is_recorded_ok_and_keeps_the_back_off():
    lab = Lab(limits=Limits(timeout_s=30.0, backoff_s=100.0, **QUIET))
    lab.mover.blocked.add("r1/0")
    lab.daemon.receive(lab.rec("r1", (0, 0, 1)))
    lab.step(31.0)
    lab.step(9.0)  # t = 31: Timeout recorded
    lab.release("r1/0")
    lab.step()  # t = 40: the platform says it moved after all
    records = [r for r in lab.journal if r.key == "r1/0"]
    assert [r.status for r in records] == ["started", "failed", "ok"]
    assert records[-1].error == "after timeout: the platform reported success 40 s after the start"
    assert lab.picture.host_of("c0", vm(0)) == host(1)  # the picture follows the record
    assert lab.daemon.counts.by_status["ok"] == 1
    # the VM stays backed off until 31 + 100, not just cooled down (vm_cooldown_s is 0)
    lab.daemon.receive(lab.rec("r2", (0, 1, 2)))
    lab.step()
    assert lab.last()["r2/0"].error.startswith(f"held: VM {vm(0)} is backed off")
    lab.clock.t = 140.0
    lab.daemon.receive(lab.rec("r3", (0, 1, 2)))
    lab.run()
    assert lab.last()["r3/0"].status == "ok" and lab.mover.calls == ["r1/0", "r3/0"]


def test_a_failed_migration_backs_off_its_vm_and_both_hosts_until_backoff_s():
    lab = Lab(hosts=5, vms=10, limits=Limits(backoff_s=50.0, **QUIET))
    lab.mover.fail["r1/0"] = "MigrationFailed: the destination refused"
    lab.daemon.receive(lab.rec("r1", (0, 0, 1)))
    lab.run()  # failed at t = 0
    assert lab.last()["r1/0"].error == "MigrationFailed: the destination refused"
    assert lab.daemon.counts.failed_by == {"platform": 1}
    lab.daemon.receive(lab.rec("r2", (0, 0, 2), (6, 1, 3), (5, 0, 4), (2, 2, 3)))
    lab.run()
    last = lab.last()
    backed_off = "is backed off after a failed migration (49 s left)"
    assert last["r2/0"].error == f"held: VM {vm(0)} {backed_off}"
    assert last["r2/1"].error.startswith(f"held: host {host(1)} is backed off")
    assert last["r2/2"].error.startswith(f"held: host {host(0)} is backed off")
    assert last["r2/3"].status == "ok"  # hosts 2 and 3 were not involved
    assert lab.daemon.counts.skipped_by == {"held": 3}
    lab.clock.t = 51.0  # the back-off (from t = 1, when the failure was collected) is over
    lab.daemon.receive(lab.rec("r3", (0, 0, 2), (6, 1, 3)))
    lab.run()
    assert lab.last()["r3/0"].status == "ok" and lab.last()["r3/1"].status == "ok"


def test_a_move_after_a_failure_on_one_of_its_hosts_is_skipped_naming_it():
    # per_host 1 makes r1/1 (onto h1) wait for r1/0 (h0 -> h1), which fails
    lab = Lab(limits=Limits(per_host=1, backoff_s=0.0, **QUIET))
    lab.mover.fail["r1/0"] = "MigrationFailed: network"
    lab.daemon.receive(lab.rec("r1", (0, 0, 1), (2, 2, 1), (3, 3, 2)))
    lab.run()
    last = lab.last()
    assert last["r1/0"].status == "failed"
    assert last["r1/1"].status == "skipped"
    assert last["r1/1"].error == (f"an earlier move of this recommendation on {host(1)} failed "
                                  "(r1/0)")  # fmt: skip
    assert last["r1/2"].status == "ok"  # hosts 3 and 2 were not involved
    assert lab.daemon.counts.skipped_by == {"earlier_failed": 1}
    assert lab.mover.calls == ["r1/0", "r1/2"]
    # another recommendation is not affected by r1's failure (the back-off is 0 here)
    lab.daemon.receive(lab.rec("r2", (2, 2, 1)))
    lab.run()
    assert lab.last()["r2/0"].status == "ok"


def test_the_rate_limit_spaces_starts_by_its_tokens():
    lab = Lab(hosts=8, vms=8, limits=Limits(rate_per_s=0.5, burst=2, **QUIET))
    # six moves on six distinct host pairs: only the rate limit holds them back
    lab.daemon.receive(lab.rec("r1", *[(i, i, (i + 1) % 8) for i in range(0, 8, 2)],
                               (1, 1, 4), (3, 3, 6)))  # fmt: skip
    lab.step()  # t = 0: the burst
    assert lab.daemon.executor.waiting["r1/2"] == "rate limit (0.5/s)"
    lab.run()
    times = [t for t, _ in lab.starts()]
    assert times == [0.0, 0.0, 2.0, 4.0, 6.0, 8.0]
    assert all(r.status == "ok" for r in lab.last().values())


def test_without_a_rate_limit_all_start_at_once():
    lab = Lab(hosts=8, vms=8, limits=Limits(**QUIET))
    lab.daemon.receive(lab.rec("r1", *[(i, i, (i + 1) % 8) for i in range(0, 8, 2)]))
    lab.run()
    assert [t for t, _ in lab.starts()] == [0.0] * 4
