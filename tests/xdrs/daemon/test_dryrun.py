"""Dry run: every move described (wave, policy's verdict, checks, limits), nothing done."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from collectors.events import ActionResult, Recommendation, inventory_key
from collectors.replay import ReplayCollector
from tests.support import wait_for
from xdrs.bus.kafka import KafkaSink
from xdrs.daemon.approvals import read_topic
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import Policy, PolicyFile
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon

from .sim import Bench, feed, scenario, spread_moves, steady_trace


def test_each_move_is_described_and_nothing_runs_nor_is_recorded():
    b = Bench(limits=Limits(per_host=2, per_cluster=3, total=5, rate_per_s=0.5,
                            metric_age_s=1e9))  # fmt: skip
    moves = spread_moves(b.collector, "c0", 4, "r1")
    moves[0] = msgspec.structs.replace(moves[0], reason="maintenance")
    moves[3] = msgspec.structs.replace(moves[3], reason="capacity")  # mandatory, but stale
    policy = Policy(default="partial", vms={moves[1].vm: "never"})
    lines: list[str] = []
    core = Rebalancer(b.mover, PolicyFile(policy=policy), b.limits, b.picture,
                      b.clock.monotonic, b.record, dry_run=lines.append)  # fmt: skip
    stale = moves[3]
    other = next(h.uuid for h in b.collector.hosts
                 if h.cluster == "c0" and h.uuid not in (stale.src, stale.dst))  # fmt: skip
    rec = Recommendation("r1", "c0", "imbalance", "balance", time.time(), 1.0, 0.5, moves)
    b.collector.move(rec, msgspec.structs.replace(stale, key="x/0", dst=other))
    core.receive(rec)
    for _ in range(5):
        core.tick()
    assert lines[0] == ("dry-run r1: cluster c0 (partial), 4 moves in 2 waves, "
                        "objective 1.0000 -> 0.5000")  # fmt: skip
    limits = "limits: 2 per host on {} and {}, 3 in c0, 5 in all, rate 0.5/s"
    want = [
        ("wave 0 r1/0", "(maintenance, gain 0, 0 MiB): would run"),
        ("wave 0 r1/1", "would skip: never: this VM is never moved"),
        ("wave 1 r1/2", "would wait for approval"),
        ("wave 1 r1/3", f"would skip: stale: VM {stale.vm} is on {other}, not on {stale.src}"),
    ]
    for line, (head, what), m in zip(lines[1:], want, moves, strict=True):
        assert line.startswith(f"  {head}: {m.vm} {m.src} -> {m.dst}") and what in line, line
        assert line.endswith(limits.format(m.src, m.dst)), line
    assert b.mover.calls == [] and b.journal == [] and core.held == {}
    assert b.picture.host_of("c0", moves[0].vm) == moves[0].src  # the scratch copy moved it


@pytest.mark.broker
def test_a_dry_run_daemon_on_the_bus_records_nothing(config, running):
    sink = KafkaSink(config)
    dc = ReplayCollector(scenario(), steady_trace(), sink, speed=0, inventory_every=0)
    feed(running, dc)
    lines: list[str] = []
    opts = DaemonOptions(limits=Limits(vm_cooldown_s=0, host_hold_s=0), dry_run=True,
                         report=lines.append)  # fmt: skip
    daemon = RebalanceDaemon(config, dc, opts)
    steps = [0]
    step = daemon.step

    def counted(*args: Any) -> None:
        step(*args)
        steps[0] += 1

    daemon.step = counted  # type: ignore[method-assign]
    running.start(daemon.run)
    assert daemon.ready.wait(60)
    hosts = {("c0", h.uuid) for h in dc.hosts if h.cluster == "c0"}
    assert wait_for(lambda: hosts <= set(daemon.picture.seen_at), 30)  # metrics came
    moves = spread_moves(dc, "c0", 3, "r1")
    rec = Recommendation("r1", "c0", "imbalance", "balance", time.time(), 1.0, 0.5, moves)
    sink.publish("recommendations", inventory_key("c0", "recommendation", "r1"), rec)
    sink.flush()
    assert wait_for(lambda: len(lines) == 4, 30)
    assert all("would run" in line for line in lines[1:]), lines  # full: all would run
    # A daemon that did run would have journaled each move's start, confirmed by the
    # broker, in the tick after its decision: let it tick five more times.
    decided = steps[0]
    assert wait_for(lambda: steps[0] >= decided + 5, 30)
    assert [e for e in read_topic(config, config.topics.actions)
            if isinstance(e, ActionResult)] == []  # fmt: skip
    assert all(dc.hosts[int(dc.place[dc.vm_index[m.vm]])].uuid == m.src for m in moves)
    sink.close()
