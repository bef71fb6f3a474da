"""No VM bounces A -> B -> A within its cooldown: the engine and the daemon on the replay
platform (``sim.Bench``), with a workload built to make the engine want to move VMs back.

Two hosts per cluster, so every second move of a VM is a move back. The engine balances
the skewed start; then the VMs it moved become the only busy ones, so that their new host
is the loaded one and the engine's next plans move them back.
"""

from __future__ import annotations

import numpy as np
import pytest

from collectors.events import ActionResult
from collectors.replay.traces import Trace
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import PolicyFile

from .sim import Bench


def _bench(cooldown_s: float) -> Bench:
    limits = Limits(vm_cooldown_s=cooldown_s, host_hold_s=0, metric_age_s=1e9)
    return Bench(vms=24, hosts=2, limits=limits)


def _round(b: Bench, steps: int = 12) -> None:
    """``steps`` metric samples, then one plan of c0 applied."""
    for _ in range(steps):
        b.metrics()
    rec = b.plan("c0")
    if rec is not None:
        b.daemon.receive(rec)
        b.run_until_idle()


def _provoke(b: Bench) -> set[str]:
    """Balance the start, then load only the VMs that moved; returns those VMs."""
    _round(b, 0)
    moved = {r.vm for r in b.journal if r.status == "ok"}
    assert moved, "the engine balanced nothing"
    c = b.collector
    cpu = np.full_like(c.trace.cpu_pct, 5.0)
    cpu[[int(c.row[c.vm_index[v]]) for v in moved]] = 100.0
    c.trace = Trace("moved-ones-busy", c.trace.vm_names, cpu)
    return moved


def _restart(b: Bench) -> None:
    history = list(b.journal)
    b.daemon.close()
    b.daemon = Rebalancer(b.mover, PolicyFile(), b.limits, b.picture, b.clock.monotonic,
                          b.record, clock_rate=b.clock.scale)  # fmt: skip
    b.daemon.restore(history, [])


def _bounces(journal: list[ActionResult]) -> list[tuple[ActionResult, ActionResult]]:
    """Pairs of a VM's consecutive ``ok`` moves where the second undoes the first."""
    last: dict[str, ActionResult] = {}
    out = []
    for r in journal:
        if r.status != "ok":
            continue
        prev = last.get(r.vm)
        if prev is not None and (prev.src, prev.dst) == (r.dst, r.src):
            out.append((prev, r))
        last[r.vm] = r
    return out


def _held(b: Bench) -> int:
    return sum(r.status == "skipped" and "was moved recently" in r.error for r in b.journal)


def test_without_a_cooldown_the_workload_does_make_vms_bounce():
    """The control: the scenario below is a real test of the cooldown."""
    b = _bench(0.0)
    _provoke(b)
    for _ in range(3):
        _round(b)
    assert _bounces(b.journal) and _held(b) == 0


@pytest.mark.parametrize("restart", [False, True], ids=["running", "restarted"])
def test_no_vm_moves_back_within_its_cooldown(restart):
    b = _bench(1e6)
    _provoke(b)
    if restart:  # the cooldowns come back from the records
        _restart(b)
    for _ in range(3):
        _round(b)
    assert _bounces(b.journal) == []
    assert _held(b) > 0  # the engine did try to move them back


def test_after_the_cooldown_a_vm_may_move_back_and_never_earlier():
    """On the daemon's clock (its timeline): every move back starts at least the cooldown
    after the move it undoes ended; once the cooldown is over, the moves back do run. (4,000
    s of the bench's clock are 2 s of real time: a loaded machine does not end it early.)"""
    cooldown = 4000.0
    b = _bench(cooldown)
    _provoke(b)
    _round(b)
    assert _held(b) > 0 and _bounces(b.journal) == []
    b.clock.sleep(cooldown * 1.2)
    _round(b)
    bounces = _bounces(b.journal)
    assert bounces
    times: dict[tuple[str, str], float] = {}
    for s in b.daemon.executor.timeline:
        times[(s.kind, s.key)] = s.t
    for first, back in bounces:
        assert times[("start", back.key)] - times[("end", first.key)] >= cooldown
