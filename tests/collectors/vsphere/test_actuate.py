"""``xdrs actuate vsphere``: the rebalancing daemon over the vSphere mover, against the
simulator and the embedded broker, with the vSphere collector running (the daemon's picture
of the clusters comes from its inventory and metrics).

Recommendations are published on the real topic; the daemon checks each move on its
picture (stale ones are skipped with the reason), relocates in the simulator and records on
the actions topic; a key is never issued twice, also by a restarted daemon.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.events import ActionResult, Move, Recommendation, inventory_key
from collectors.retry import Patience
from collectors.vsphere import CollectorOptions, Connection, ConnectionSpec
from collectors.vsphere.bus import BusCollector
from collectors.vsphere.events import BridgeOptions, scope_of
from collectors.vsphere.mover import VSphereMover
from tests.collectors.vsphere import helpers
from tests.collectors.vsphere.conftest import Vcsim, start_vcsim
from tests.support import wait_for
from tests.xdrs.bus.conftest import read_all
from xdrs.bus import BusConfig
from xdrs.bus.kafka import KafkaSink
from xdrs.daemon.limits import Limits
from xdrs.daemon.picture import Picture
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon

pytestmark = [pytest.mark.vcsim, pytest.mark.broker]

FINAL = ("ok", "failed", "skipped")
LIMITS = Limits(vm_cooldown_s=0, host_hold_s=0, backoff_s=0, timeout_s=60)


class Collector:
    """The vSphere collector into the bus, in a thread (``xdrs collect vsphere``)."""

    def __init__(self, sim: Vcsim, config: BusConfig, scope: str | None = None) -> None:
        self.conn = Connection(ConnectionSpec(sim.url, "u", "p"), retries=3, backoff_s=0.1)
        self.sink = KafkaSink(config)
        bridge = BridgeOptions(scope or scope_of(sim.url), inventory_every=0)
        self.source = BusCollector(self.conn, self.sink, bridge,
                                   CollectorOptions(interval_s=1.0, perf=False,
                                                    backoff_s=0.2))  # fmt: skip
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.source.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(20)
        self.sink.close()
        self.conn.close()


class Actuator:
    """A rebalancing daemon in a thread; ``restart`` makes a new one (a new process)."""

    def __init__(self, sim: Vcsim, config: BusConfig) -> None:
        self.sim, self.config = sim, config
        self.conn = Connection(ConnectionSpec(sim.url, "u", "p"), retries=2)
        self.daemon: RebalanceDaemon | None = None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, mover: VSphereMover | None = None) -> RebalanceDaemon:
        mover = mover or VSphereMover(self.conn, scope_of(self.sim.url), Patience(timeout_s=30))
        self.daemon = RebalanceDaemon(self.config, mover, DaemonOptions(limits=LIMITS))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.daemon.run, args=(self.stop,), daemon=True)
        self.thread.start()
        assert self.daemon.ready.wait(30)
        return self.daemon

    def halt(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(20)
            assert not self.thread.is_alive()


@pytest.fixture
def actuator(vcsim_small: Vcsim, config: BusConfig) -> Iterator[Actuator]:
    collector = Collector(vcsim_small, config)
    a = Actuator(vcsim_small, config)
    yield a
    a.halt()
    a.conn.close()
    collector.close()


def _final(daemon: RebalanceDaemon) -> list[ActionResult]:
    assert daemon.core is not None
    return [r for r in list(daemon.core.records) if r.status in FINAL]


def _room(daemon: RebalanceDaemon, inv: Any, scope: str, vm: Any) -> str:
    """A host of ``vm``'s cluster with room for it on the daemon's picture (the simulator's
    hosts are loaded unevenly; the daemon skips a move that no longer fits)."""
    assert daemon.core is not None
    hosts = _hosts_beside(inv, scope, vm)
    assert wait_for(lambda: hosts <= set(daemon.picture.seen_at), 60)  # measured demand
    with daemon.core.lock:
        return _fitting(daemon.picture, inv, scope, vm)


def _room_on_the_bus(config: BusConfig, inv: Any, scope: str, vm: Any) -> str:
    """The same, on a picture read from the topics (a daemon in another process)."""
    hosts = _hosts_beside(inv, scope, vm)
    picture = Picture()

    def measured() -> bool:
        for t in (config.topics.inventory, config.topics.metrics):
            for r in read_all(config, t, settle_s=0.3):
                if r.event is not None:
                    picture.apply(r.event, 0.0)
        return hosts <= set(picture.seen_at)

    assert wait_for(measured, 60, every=0.5)
    return _fitting(picture, inv, scope, vm)


def _hosts_beside(inv: Any, scope: str, vm: Any) -> set[tuple[str, str]]:
    cluster_of = {h.id: h.cluster for h in inv.hosts}
    cluster = f"{scope}/{cluster_of[vm.host]}"
    return {(cluster, f"{scope}/{h.id}") for h in inv.hosts if h.cluster == cluster_of[vm.host]}


def _fitting(picture: Picture, inv: Any, scope: str, vm: Any) -> str:
    cluster_of = {h.id: h.cluster for h in inv.hosts}
    cluster = f"{scope}/{cluster_of[vm.host]}"
    for h in inv.hosts:
        if h.cluster == cluster_of[vm.host] and h.id != vm.host:
            m = Move("probe", f"{scope}/{vm.id}", f"{scope}/{vm.host}", f"{scope}/{h.id}",
                     "imbalance")  # fmt: skip
            if not picture.refuse(cluster, m, [], 0.0, 1e12):
                return str(h.id)
    raise AssertionError(f"no host of {cluster} has room for {vm.id}")


def _sees(daemon: RebalanceDaemon, cluster: str, vm: str, host: str | None) -> bool:
    """The daemon's picture has ``vm`` on ``host`` (``None``: not at all)."""
    assert daemon.core is not None
    with daemon.core.lock:  # the daemon's loop folds events in under it
        return daemon.picture.host_of(cluster, vm) == host


def _rec(cluster: str, rid: str, moves: list[dict[str, Any]]) -> Recommendation:
    typed = [Move(**{"key": f"{rid}/{i}", "reason": "imbalance", **m}) for i, m in enumerate(moves)]
    return Recommendation(id=rid, cluster=cluster, trigger="test", strategy="balance",
                          ts=time.time(), objective_before=1.0, objective_after=0.5,
                          moves=typed)  # fmt: skip


def _publish(config: BusConfig, *recs: Recommendation) -> None:
    sink = KafkaSink(config)
    for r in recs:
        sink.publish("recommendations", inventory_key(r.cluster, "recommendation", r.id), r)
    sink.close()


def _results(config: BusConfig) -> list[ActionResult]:
    """The results on the actions topic (not the ``started`` records)."""
    return [r.event for r in read_all(config, config.topics.actions, settle_s=0.5)
            if isinstance(r.event, ActionResult) and r.event.status in FINAL]  # fmt: skip


def test_moves_applied_stale_ones_skipped_never_twice(
    vcsim_small: Vcsim, config: BusConfig, actuator: Actuator
) -> None:
    inv = helpers.inventory(vcsim_small)
    scope = scope_of(vcsim_small.url)
    on = [v for v in inv.vms if v.powered_on]
    a, b = on[0], on[1]
    cluster = f"{scope}/{next(h.cluster for h in inv.hosts if h.id == a.host)}"
    dst_b = helpers.sibling(inv, b.host)
    wrong_src = helpers.sibling(inv, dst_b)  # b is not there: the plan is stale
    assert wrong_src != b.host
    cluster_of = {h.id: h.cluster for h in inv.hosts}
    c = next(v for v in on[2:] if cluster_of[v.host or ""] == cluster_of[a.host or ""])
    elsewhere = next(h.id for h in inv.hosts if h.cluster != cluster_of[a.host or ""])
    u = lambda x: f"{scope}/{x}"  # noqa: E731
    daemon = actuator.start()
    assert wait_for(lambda: _sees(daemon, cluster, u(a.id), u(a.host)), 60)  # collected
    dst_a = _room(daemon, inv, scope, a)
    rec = _rec(cluster, "r1", [
        {"vm": u(a.id), "src": u(a.host), "dst": u(dst_a)},
        {"vm": u(b.id), "src": u(wrong_src), "dst": u(dst_b)},
        {"vm": f"other-vc/{a.id}", "src": u(a.host), "dst": u(dst_a)},
        {"vm": u(c.id), "src": u(c.host), "dst": u(elsewhere)},  # another cluster
    ])  # fmt: skip
    foreign = _rec("other-vc/domain-c7", "r2", [{"vm": "other-vc/vm-1", "src": "other-vc/h1",
                                                  "dst": "other-vc/h2"}])  # fmt: skip
    _publish(actuator.config, rec, foreign)
    assert wait_for(lambda: len(_final(daemon)) == 4, 60)
    status = {r.key: (r.status, r.error.split(":")[0]) for r in _final(daemon)}
    assert status == {"r1/0": ("ok", ""), "r1/1": ("skipped", "stale"),
                      "r1/2": ("skipped", "stale"), "r1/3": ("skipped", "stale")}  # fmt: skip
    why = {r.key: r.error for r in _final(daemon)}
    assert why["r1/1"] == f"stale: VM {u(b.id)} is on {u(b.host)}, not on {u(wrong_src)}"
    assert why["r1/3"].endswith(f"{u(elsewhere)} is not in the inventory of {cluster}")
    now = helpers.hosts_of(vcsim_small)
    assert now[a.id] == dst_a and now[b.id] == b.host and now[c.id] == c.host
    on_topic = _results(actuator.config)
    assert sorted(r.key for r in on_topic) == ["r1/0", "r1/1", "r1/2", "r1/3"]
    assert all(r.recommendation == "r1" and r.cluster == cluster for r in on_topic)

    # redelivered: nothing issued again. A marker recommendation of the same cluster (same
    # partition, read after it) is answered once the redelivery has been handled.
    def marker(rid: str) -> Recommendation:
        return _rec(cluster, rid, [{"vm": u(b.id), "src": u(wrong_src), "dst": u(dst_b)}])

    _publish(actuator.config, rec, marker("m1"))
    assert wait_for(lambda: "m1/0" in {r.key for r in _final(daemon)}, 60)
    assert sorted(r.key for r in _final(daemon)) == ["m1/0", "r1/0", "r1/1", "r1/2", "r1/3"]
    # a new daemon (a new process) reads the actions topic: the keys are known
    actuator.halt()
    again = actuator.start()
    assert again.core is not None and again.core.known >= {"r1/0", "r1/1", "r1/2", "r1/3"}
    _publish(actuator.config, rec, marker("m2"))
    assert wait_for(lambda: "m2/0" in {r.key for r in _final(again)}, 60)
    assert [r.key for r in again.core.records if not r.key.startswith("m2/")] == []
    assert sorted(r.key for r in _results(actuator.config) if r.key.startswith("r1/")) == [
        "r1/0", "r1/1", "r1/2", "r1/3"]  # fmt: skip
    assert helpers.hosts_of(vcsim_small)[a.id] == dst_a


def test_a_deleted_vm_is_skipped_the_others_applied(
    vcsim_small: Vcsim, config: BusConfig, actuator: Actuator
) -> None:
    inv = helpers.inventory(vcsim_small)
    scope = scope_of(vcsim_small.url)
    on = [v for v in inv.vms if v.powered_on]
    gone, good = on[0], on[1]
    u = lambda x: f"{scope}/{x}"  # noqa: E731
    cluster = f"{scope}/{next(h.cluster for h in inv.hosts if h.id == gone.host)}"
    daemon = actuator.start()
    assert wait_for(lambda: _sees(daemon, cluster, u(gone.id), u(gone.host)), 60)
    with vcsim_small.connect() as admin:
        obj = helpers.vm(admin, gone.id)
        helpers.wait_task(obj.PowerOffVM_Task())
        helpers.wait_task(obj.Destroy_Task())
    assert wait_for(lambda: _sees(daemon, cluster, u(gone.id), None), 60)  # the tombstone
    dst_good = _room(daemon, inv, scope, good)
    rec = _rec(cluster, "r9", [
        {"vm": u(gone.id), "src": u(gone.host), "dst": u(helpers.sibling(inv, gone.host))},
        {"vm": u(good.id), "src": u(good.host), "dst": u(dst_good), "wave": 1},
    ])  # fmt: skip
    _publish(config, rec)
    assert wait_for(lambda: len(_final(daemon)) == 2, 60)
    assert [(r.key, r.status, r.error.split(":")[0]) for r in _final(daemon)] == [
        ("r9/0", "skipped", "stale"), ("r9/1", "ok", "")]  # fmt: skip
    assert helpers.hosts_of(vcsim_small)[good.id] == dst_good


def test_actuate_command_runs_until_sigterm(vcsim_small: Vcsim, config: BusConfig) -> None:
    inv = helpers.inventory(vcsim_small)
    v = next(x for x in inv.vms if x.powered_on)
    cluster = f"vc-b/{next(h.cluster for h in inv.hosts if h.id == v.host)}"
    collector = Collector(vcsim_small, config, scope="vc-b")
    dst = _room_on_the_bus(config, inv, "vc-b", v)
    cmd = [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())",
           "actuate", "vsphere", "--url", vcsim_small.url, "--user", "u", "--vcenter-id",
           "vc-b", "--bootstrap-servers", config.bootstrap, "--topic-prefix",
           config.topics.prefix, "--kafka-option", "request_timeout_ms=5000",
           "--per-host", "4"]  # fmt: skip
    env = dict(os.environ, XDRS_VSPHERE_PASSWORD="p")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    try:
        _publish(config, _rec(cluster, "c1", [{"vm": f"vc-b/{v.id}", "src": f"vc-b/{v.host}",
                                               "dst": f"vc-b/{dst}"}]))  # fmt: skip
        assert wait_for(lambda: len(_results(config)) == 1, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        collector.close()
    assert proc.returncode == 0, err
    assert "1 moved, 0 failed, 0 skipped" in out, (out, _results(config))
    assert [r.status for r in _results(config)] == ["ok"]
    assert helpers.hosts_of(vcsim_small)[v.id] == dst


def test_actuate_dry_run_prints_and_does_nothing(vcsim_small: Vcsim, config: BusConfig) -> None:
    inv = helpers.inventory(vcsim_small)
    v = next(x for x in inv.vms if x.powered_on)
    cluster = f"vc-d/{next(h.cluster for h in inv.hosts if h.id == v.host)}"
    collector = Collector(vcsim_small, config, scope="vc-d")
    dst = _room_on_the_bus(config, inv, "vc-d", v)
    cmd = [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())",
           "actuate", "vsphere", "--url", vcsim_small.url, "--user", "u", "--vcenter-id",
           "vc-d", "--bootstrap-servers", config.bootstrap, "--topic-prefix",
           config.topics.prefix, "--dry-run", "--per-host", "2"]  # fmt: skip
    env = dict(os.environ, XDRS_VSPHERE_PASSWORD="p", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    try:
        _publish(config, _rec(cluster, "d1", [{"vm": f"vc-d/{v.id}", "src": f"vc-d/{v.host}",
                                               "dst": f"vc-d/{dst}"}]))  # fmt: skip
        lines: list[str] = []
        stdout = proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.extend(stdout), daemon=True).start()
        assert wait_for(lambda: len(lines) >= 2, 60), lines
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert proc.stderr is not None
        err = proc.stderr.read()
        collector.close()
    assert proc.returncode == 0, err
    assert lines[0].startswith(f"dry-run d1: cluster {cluster} (full), 1 moves in 1 waves")
    assert f"d1/0: vc-d/{v.id} vc-d/{v.host} -> vc-d/{dst}" in lines[1]
    assert "limits: 2 per host on" in lines[1], lines[1]
    assert read_all(config, config.topics.actions, settle_s=0.5) == []
    assert helpers.hosts_of(vcsim_small)[v.id] == v.host


def test_actuator_survives_simulator_restart(
    vcsim_bin: Path, tmp_path: Path, config: BusConfig
) -> None:
    args = ("-hosts", "8", "-vms", "40", "-clusters", "2")
    sim = start_vcsim(vcsim_bin, tmp_path / "a", *args)
    inv = helpers.inventory(sim)
    scope = scope_of(sim.url)
    on = [v for v in inv.vms if v.powered_on]
    cluster = f"{scope}/{next(h.cluster for h in inv.hosts if h.id == on[0].host)}"
    u = lambda x: f"{scope}/{x}"  # noqa: E731
    collector = Collector(sim, config)
    actuator = Actuator(sim, config)
    conn = Connection(ConnectionSpec(sim.url, "u", "p"), retries=2, backoff_s=0.1)
    patience = Patience(timeout_s=30, attempts=2, backoff_s=0.1)
    daemon = actuator.start(VSphereMover(conn, scope, patience))
    try:
        assert wait_for(lambda: _sees(daemon, cluster, u(on[1].id), u(on[1].host)), 60)
        dsts = [_room(daemon, inv, scope, v) for v in on[:2]]
        moves = [
            {"vm": u(v.id), "src": u(v.host), "dst": u(d)} for v, d in zip(on, dsts, strict=False)
        ]
        _ = conn.si  # a live session, then the simulator dies under it
        sim.stop(signal.SIGKILL)
        _publish(config, _rec(cluster, "k1", [moves[0]]))
        assert wait_for(lambda: len(_final(daemon)) == 1, 60)
        first = _final(daemon)[0]
        assert (first.status, first.error.split(":")[0]) == ("failed", "ConnectionLost")
        assert actuator.thread is not None and actuator.thread.is_alive()
        sim = start_vcsim(vcsim_bin, tmp_path / "b", *args, "-listen", f"127.0.0.1:{sim.port}")
        _publish(config, _rec(cluster, "k2", [moves[1]]))
        assert wait_for(lambda: len(_final(daemon)) == 2, 60)
        assert _final(daemon)[1].status == "ok", _final(daemon)[1].error
        assert helpers.hosts_of(sim)[on[1].id] == dsts[1]
    finally:
        actuator.halt()
        collector.close()
        sim.stop()
        conn.close()
        actuator.conn.close()
