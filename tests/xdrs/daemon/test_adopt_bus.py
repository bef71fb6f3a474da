"""On both real brokers: a migration that outlives its daemon is adopted by the next one.

The platform here keeps migrating after the daemon that asked stops (as vMotion and Nova
do): the first daemon starts ``r1/0``, which the platform holds, and stops; a second daemon
rebuilt from the topics adopts it, keeps its host's one slot (``per_host=1``), and records
it ``ok`` when the platform's inventory shows the VM landed, never calling the platform for
it again; a move off the same host waits until then.
"""

from __future__ import annotations

import threading
import time

import pytest

from collectors.events import ActionResult, Move, Recommendation, inventory_key
from collectors.replay import ReplayCollector
from tests.support import wait_for
from xdrs.bus.kafka import KafkaSink
from xdrs.daemon.limits import Limits
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon

from ..bus.conftest import read_all
from .sim import feed, scenario, spread_moves, steady_trace

pytestmark = pytest.mark.broker


class Outliving:
    """The replay platform, whose migration of a ``held`` key runs until :meth:`land`,
    whatever happens to the daemon that started it."""

    def __init__(self, dc: ReplayCollector, held: str) -> None:
        self.dc, self.held = dc, held
        self.calls: list[str] = []
        self.landing = threading.Event()

    def owns(self, cluster: str) -> bool:
        return self.dc.owns(cluster)

    def move(self, rec: Recommendation, m: Move) -> ActionResult:
        self.calls.append(m.key)
        if m.key == self.held:
            assert self.landing.wait(60), f"{m.key} never landed"
        return self.dc.move(rec, m)  # publishes the VM on its new host

    def land(self) -> None:
        self.landing.set()


def _send(sink: KafkaSink, rec: Recommendation) -> None:
    sink.publish("recommendations", inventory_key(rec.cluster, "recommendation", rec.id), rec)
    sink.flush()


def _records(config) -> dict[str, list[ActionResult]]:
    out: dict[str, list[ActionResult]] = {}
    for r in read_all(config, config.topics.actions, settle_s=0.2):
        if isinstance(r.event, ActionResult):
            out.setdefault(r.event.key, []).append(r.event)
    return out


def _waiting(d: RebalanceDaemon, key: str) -> str:
    assert d.core is not None
    with d.core.lock:
        return d.core.executor.waiting.get(key, "")


def test_a_migration_running_through_a_restart_is_adopted_and_holds_its_slot(config, running):
    sink = KafkaSink(config)
    dc = ReplayCollector(scenario(), steady_trace(), sink, speed=0, inventory_every=0)
    feed(running, dc)
    m0, m1 = spread_moves(dc, "c0", 2, "r1")  # two VMs off the same host
    mover = Outliving(dc, "r1/0")
    opts = DaemonOptions(limits=Limits(per_host=1, vm_cooldown_s=0, host_hold_s=0))
    first, stop_first = RebalanceDaemon(config, mover, opts), threading.Event()
    thread = threading.Thread(target=first.run, args=(stop_first,), daemon=True)
    thread.start()
    _send(sink, Recommendation("r1", "c0", "imbalance", "balance", time.time(), 1.0, 0.5, [m0]))
    assert wait_for(lambda: [r.status for r in _records(config).get("r1/0", [])] == ["started"])
    stop_first.set()  # the daemon stops; the platform's migration goes on
    thread.join(30)
    assert not thread.is_alive()

    second = RebalanceDaemon(config, mover, opts)
    running.start(second.run)
    assert second.ready.wait(60)
    assert second.core is not None and "r1/0" in second.core.executor.flights
    r2 = Move("r2/0", m1.vm, m1.src, m1.dst, "imbalance")
    _send(sink, Recommendation("r2", "c0", "imbalance", "balance", time.time(), 1.0, 0.5, [r2]))
    assert wait_for(lambda: _waiting(second, "r2/0") == f"per-host limit (1) on {m0.src}", 30)
    assert mover.calls == ["r1/0"] and "r2/0" not in _records(config)
    mover.land()
    assert wait_for(lambda: any(r.status == "ok" for r in _records(config).get("r2/0", [])), 60)

    got = _records(config)
    assert [(r.status, r.error) for r in got["r1/0"]] == [
        ("started", ""),
        ("ok", "adopted after restart: the VM is on the destination"),
    ]
    assert [r.status for r in got["r2/0"]] == ["started", "ok"]
    assert mover.calls == ["r1/0", "r2/0"]  # the adopted move was not issued again
    with second.core.lock:
        order = [(s.kind, s.key) for s in second.core.executor.timeline]
    assert order == [("start", "r1/0"), ("end", "r1/0"), ("start", "r2/0"), ("end", "r2/0")]
    assert dc.hosts[int(dc.place[dc.vm_index[m0.vm]])].uuid == m0.dst
    sink.close()
