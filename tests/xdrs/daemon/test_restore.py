"""Cooldowns, host holds and back-offs survive a restart: rebuilt from the actions topic.

The first tests restart a :class:`Rebalancer` over the replay platform (``sim.Bench``) from
the records the first one wrote; the last one restarts a :class:`RebalanceDaemon` on the real
brokers, which rebuilds from the actions topic itself.
"""

from __future__ import annotations

import threading
import time

import msgspec
import pytest

from collectors.events import ActionResult, Move, Recommendation, inventory_key, move_result
from collectors.replay import ReplayCollector
from tests.support import wait_for
from xdrs.bus.kafka import KafkaSink
from xdrs.daemon.control import Control
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import PolicyFile
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon

from ..bus.conftest import read_all
from .sim import Bench, feed, scenario, spread_moves, steady_trace

LONG = Limits(vm_cooldown_s=1e6, host_hold_s=1e6, backoff_s=1e6, metric_age_s=1e9)


def _rec(rid: str, moves: list[Move], cluster: str = "c0") -> Recommendation:
    return Recommendation(rid, cluster, "imbalance", "balance", time.time(), 1.0, 0.5, moves)


def _restart(b: Bench, history: list[ActionResult], recs: list[Recommendation]) -> None:
    """A new daemon over the same platform, rebuilt from ``history``; its clock is the
    replay's, ``b.clock.scale`` times faster than the records' wall clock."""
    b.daemon.close()
    b.daemon = Rebalancer(b.mover, PolicyFile(), b.limits, b.picture, b.clock.monotonic,
                          b.record, clock_rate=b.clock.scale)  # fmt: skip
    b.daemon.restore(history, recs)


def _run(b: Bench, rec: Recommendation) -> dict[str, ActionResult]:
    b.daemon.receive(rec)
    b.run_until_idle()
    return {r.key: r for r in b.journal if r.recommendation == rec.id}


def _other_host(b: Bench, *not_these: str) -> str:
    t = b.picture.tables["c0"]
    return next(h for h in t.hosts if h not in not_these)


def test_a_restart_keeps_the_cooldown_of_a_moved_vm_and_the_hold_of_its_hosts():
    b = Bench(limits=LONG)
    (m,) = spread_moves(b.collector, "c0", 1, "r1")
    r1 = _rec("r1", [m])
    assert _run(b, r1)["r1/0"].status == "ok"
    _restart(b, list(b.journal), [r1])

    back = _run(b, _rec("r2", [Move("r2/0", m.vm, m.dst, m.src, "imbalance")]))["r2/0"]
    assert back.status == "skipped"
    assert back.error.startswith(f"held: VM {m.vm} was moved recently"), back.error
    t = b.picture.tables["c0"]
    other = next(v for v, h in zip(t.vm_ids, t.vm_host, strict=True) if h == m.src)
    to = _other_host(b, m.src, m.dst)
    onto = _run(b, _rec("r3", [Move("r3/0", other, m.src, to, "imbalance")]))["r3/0"]
    assert onto.status == "skipped"
    assert onto.error.startswith(f"held: host {m.src} lost a VM recently"), onto.error
    assert b.mover.calls == ["r1/0"]  # nothing else reached the platform
    assert b.daemon.counts.skipped_by["held"] == 2
    held = Control(lambda: b.daemon).held_back()["skipped"]  # what the CLI and API show
    assert [(h["key"], h["why"][:5]) for h in held] == [("r3/0", "held:"), ("r2/0", "held:")]


@pytest.mark.parametrize(("error", "held"), [
    ("MigrationError: the destination refused", True),
    ("Timeout: no result after 3600 s", True),
    ("Interrupted: the daemon stopped during the migration; VM on h1", False),
], ids=["platform", "timeout", "interrupted"])  # fmt: skip
def test_a_restart_keeps_the_back_off_of_a_failed_migration(error, held):
    b = Bench(limits=LONG)
    (m,) = spread_moves(b.collector, "c0", 1, "r1")
    r1 = _rec("r1", [m])
    failed = msgspec.structs.replace(move_result(r1, m, error), ts=time.time() - 1)
    _restart(b, [failed], [r1])
    again = _run(b, _rec("r2", [Move("r2/0", m.vm, m.src, m.dst, "imbalance")]))["r2/0"]
    if held:  # the platform failed: the VM and both hosts are left alone
        assert again.status == "skipped"
        assert again.error.startswith(f"held: VM {m.vm} is backed off after a failed"), again
    else:  # the daemon died mid-move (a record of an earlier restart): nothing to back off
        assert again.status == "ok" and b.mover.calls == ["r2/0"]


def test_the_records_ts_is_converted_to_the_daemons_clock():
    """Bench's clock runs 2,000 times faster than the wall clock of the records: a move
    100 wall seconds ago is 200,000 s into a 1,000,000 s cooldown; one 600 wall seconds ago
    (1,200,000 s) is past it and ignored."""
    b = Bench(limits=Limits(vm_cooldown_s=1e6, host_hold_s=0, metric_age_s=1e9))
    m0, m1 = spread_moves(b.collector, "c0", 2, "r1")
    r1 = _rec("r1", [m0, m1])
    for m in (m0, m1):
        b.collector.move(r1, m)
    now = time.time()
    history = [msgspec.structs.replace(move_result(r1, m0), ts=now - 100),
               msgspec.structs.replace(move_result(r1, m1), ts=now - 600)]  # fmt: skip
    _restart(b, history, [r1])
    back = [Move(f"r2/{i}", m.vm, m.dst, m.src, "imbalance") for i, m in enumerate((m0, m1))]
    got = _run(b, _rec("r2", back))
    assert got["r2/0"].status == "skipped", got["r2/0"]
    left = float(got["r2/0"].error.rsplit("(", 1)[1].split(" s left")[0])
    assert 790_000 < left <= 800_000, got["r2/0"].error  # without the rate: ~999,900
    assert got["r2/1"].status == "ok" and b.mover.calls == ["r2/1"]


def test_a_move_resolved_at_the_restart_starts_its_cooldown_then():
    b = Bench(limits=LONG)
    (m,) = spread_moves(b.collector, "c0", 1, "r1")
    r1 = _rec("r1", [m])
    b.collector.move(r1, m)  # it ran; the daemon died before recording its result
    started = msgspec.structs.replace(move_result(r1, m), status="started", ts=time.time() - 1e4)
    _restart(b, [started], [r1])
    (resolved,) = [r for r in b.journal if r.key == "r1/0"]
    assert resolved.status == "ok" and resolved.ts > started.ts  # stamped at the restart
    back = _run(b, _rec("r2", [Move("r2/0", m.vm, m.dst, m.src, "imbalance")]))["r2/0"]
    assert back.status == "skipped" and "was moved recently" in back.error


@pytest.mark.broker
def test_a_restarted_daemon_on_the_bus_holds_back_a_vm_moved_before(config, running):
    """Move a VM, restart the daemon (a new one, rebuilt from the topics), send a
    recommendation moving it back: held back, cooldown, in the held-back reasons."""
    sink = KafkaSink(config)
    dc = ReplayCollector(scenario(), steady_trace(), sink, speed=0, inventory_every=0)
    feed(running, dc)
    opts = DaemonOptions(limits=Limits(vm_cooldown_s=1e6, host_hold_s=0))
    (m,) = spread_moves(dc, "c0", 1, "r1")
    first, stop_first = RebalanceDaemon(config, dc, opts), threading.Event()
    thread = threading.Thread(target=first.run, args=(stop_first,), daemon=True)
    thread.start()
    _send(sink, _rec("r1", [m]))
    assert wait_for(lambda: _status(config, "r1/0") == "ok", 60)
    stop_first.set()
    thread.join(30)
    assert not thread.is_alive()

    second = RebalanceDaemon(config, dc, opts)
    running.start(second.run)
    assert second.ready.wait(60)
    _send(sink, _rec("r2", [Move("r2/0", m.vm, m.dst, m.src, "imbalance")]))
    assert wait_for(lambda: _status(config, "r2/0") == "skipped", 60)
    held = second.control().held_back()["skipped"]
    assert [h["key"] for h in held] == ["r2/0"]
    assert held[0]["why"].startswith(f"held: VM {m.vm} was moved recently"), held
    assert second.core is not None and second.core.counts.skipped_by == {"held": 1}
    assert dc.hosts[int(dc.place[dc.vm_index[m.vm]])].uuid == m.dst  # it stayed
    sink.close()


def _send(sink: KafkaSink, rec: Recommendation) -> None:
    sink.publish("recommendations", inventory_key(rec.cluster, "recommendation", rec.id), rec)
    sink.flush()


def _status(config, key: str) -> str:
    last = [r.event for r in read_all(config, config.topics.actions, settle_s=0.2)
            if isinstance(r.event, ActionResult) and r.event.key == key]  # fmt: skip
    return last[-1].status if last else ""
