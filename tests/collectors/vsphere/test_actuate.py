"""The vSphere actuator daemon against the simulator and the embedded broker.

Recommendations are published on the real topic; the daemon relocates in the simulator and
reports on the actions topic; a key is never applied twice, also by a restarted daemon.
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
from collectors.vsphere import Connection, ConnectionSpec
from collectors.vsphere.events import scope_of
from collectors.vsphere.mover import VSphereMover
from tests.collectors.vsphere import helpers
from tests.collectors.vsphere.conftest import Vcsim, start_vcsim
from tests.support import wait_for
from tests.xdrs.bus.conftest import read_all
from xdrs.actuate import ActuatorDaemon
from xdrs.bus import BusConfig
from xdrs.bus.kafka import KafkaSink

pytestmark = [pytest.mark.vcsim, pytest.mark.broker]

_groups = iter(range(10**6))


class Actuator:
    """An actuator daemon in a thread; ``restart`` makes a new one (a new process)."""

    def __init__(self, sim: Vcsim, config: BusConfig) -> None:
        self.sim, self.config = sim, config
        self.conn = Connection(ConnectionSpec(sim.url, "u", "p"), retries=2)
        self.daemon: ActuatorDaemon | None = None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, group: str) -> ActuatorDaemon:
        mover = VSphereMover(self.conn, scope_of(self.sim.url), timeout_s=30)
        # no collector runs here: do not wait for the moves to show on the inventory topic
        self.daemon = ActuatorDaemon(self.config, mover, group, confirm_s=0)
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
    a = Actuator(vcsim_small, config)
    yield a
    a.halt()
    a.conn.close()


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
    return [r.event for r in read_all(config, config.topics.actions, settle_s=0.5)
            if isinstance(r.event, ActionResult)]  # fmt: skip


def test_moves_applied_reported_never_twice(
    vcsim_small: Vcsim, config: BusConfig, actuator: Actuator
) -> None:
    inv = helpers.inventory(vcsim_small)
    scope = scope_of(vcsim_small.url)
    on = [v for v in inv.vms if v.powered_on]
    a, b = on[0], on[1]
    cluster = f"{scope}/{next(h.cluster for h in inv.hosts if h.id == a.host)}"
    dst_a, dst_b = helpers.sibling(inv, a.host), helpers.sibling(inv, b.host)
    wrong_src = helpers.sibling(inv, dst_b)  # b is not there: the plan is stale
    assert wrong_src != b.host
    cluster_of = {h.id: h.cluster for h in inv.hosts}
    c = next(v for v in on[2:] if cluster_of[v.host or ""] == cluster_of[a.host or ""])
    elsewhere = next(h.id for h in inv.hosts if h.cluster != cluster_of[a.host or ""])
    u = lambda x: f"{scope}/{x}"  # noqa: E731
    rec = _rec(cluster, "r1", [
        {"vm": u(a.id), "src": u(a.host), "dst": u(dst_a)},
        {"vm": u(b.id), "src": u(wrong_src), "dst": u(dst_b)},
        {"vm": f"other-vc/{a.id}", "src": u(a.host), "dst": u(dst_a)},
        {"vm": u(c.id), "src": u(c.host), "dst": u(elsewhere)},  # another cluster
    ])  # fmt: skip
    foreign = _rec("other-vc/domain-c7", "r2", [{"vm": "other-vc/vm-1", "src": "other-vc/h1",
                                                  "dst": "other-vc/h2"}])  # fmt: skip
    daemon = actuator.start(f"act-{next(_groups)}")
    _publish(actuator.config, rec, foreign)
    assert wait_for(lambda: len(daemon.results) == 4)
    status = {r.key: (r.status, r.error.split(":")[0]) for r in daemon.results}
    assert status == {"r1/0": ("ok", ""), "r1/1": ("failed", "StalePlan"),
                      "r1/2": ("failed", "ForeignObject"),
                      "r1/3": ("failed", "WrongCluster")}  # fmt: skip
    now = helpers.hosts_of(vcsim_small)
    assert now[a.id] == dst_a and now[b.id] == b.host and now[c.id] == c.host
    on_topic = _results(actuator.config)
    assert sorted(r.key for r in on_topic) == ["r1/0", "r1/1", "r1/2", "r1/3"]
    assert all(r.recommendation == "r1" and r.cluster == cluster for r in on_topic)
    # redelivered: nothing applied again
    _publish(actuator.config, rec)
    assert wait_for(lambda: daemon.skipped >= 4)
    assert len(daemon.results) == 4
    # a new daemon in a new group reads both recommendations again; keys come from the topic
    actuator.halt()
    again = actuator.start(f"act-{next(_groups)}")
    assert again.applied >= {"r1/0", "r1/1", "r1/2", "r1/3"}
    assert wait_for(lambda: again.skipped >= 8)
    time.sleep(0.5)
    assert again.results == []
    assert len(_results(actuator.config)) == 4
    assert helpers.hosts_of(vcsim_small)[a.id] == dst_a


def test_deleted_vm_fails_others_applied(
    vcsim_small: Vcsim, config: BusConfig, actuator: Actuator
) -> None:
    inv = helpers.inventory(vcsim_small)
    scope = scope_of(vcsim_small.url)
    on = [v for v in inv.vms if v.powered_on]
    gone, good = on[0], on[1]
    with vcsim_small.connect() as admin:
        obj = helpers.vm(admin, gone.id)
        helpers.wait_task(obj.PowerOffVM_Task())
        helpers.wait_task(obj.Destroy_Task())
    u = lambda x: f"{scope}/{x}"  # noqa: E731
    cluster = f"{scope}/{next(h.cluster for h in inv.hosts if h.id == gone.host)}"
    dst_good = helpers.sibling(inv, good.host)
    rec = _rec(cluster, "r9", [
        {"vm": u(gone.id), "src": u(gone.host), "dst": u(helpers.sibling(inv, gone.host))},
        {"vm": u(good.id), "src": u(good.host), "dst": u(dst_good), "wave": 1},
    ])  # fmt: skip
    daemon = actuator.start(f"act-{next(_groups)}")
    _publish(config, rec)
    assert wait_for(lambda: len(daemon.results) == 2)
    assert [(r.status, r.error.split(":")[0]) for r in daemon.results] == [
        ("failed", "ManagedObjectNotFound"), ("ok", "")]  # fmt: skip
    assert helpers.hosts_of(vcsim_small)[good.id] == dst_good


def test_actuate_command_runs_until_sigterm(vcsim_small: Vcsim, config: BusConfig) -> None:
    inv = helpers.inventory(vcsim_small)
    v = next(x for x in inv.vms if x.powered_on)
    dst = helpers.sibling(inv, v.host)
    cluster = f"vc-b/{next(h.cluster for h in inv.hosts if h.id == v.host)}"
    cmd = [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())",
           "actuate", "vsphere", "--url", vcsim_small.url, "--user", "u", "--vcenter-id",
           "vc-b", "--bootstrap-servers", config.bootstrap, "--topic-prefix",
           config.topics.prefix, "--kafka-option", "request_timeout_ms=5000",
           "--confirm-timeout", "0"]  # fmt: skip
    env = dict(os.environ, XDRS_VSPHERE_PASSWORD="p")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    try:
        _publish(config, _rec(cluster, "c1", [{"vm": f"vc-b/{v.id}", "src": f"vc-b/{v.host}",
                                               "dst": f"vc-b/{dst}"}]))  # fmt: skip
        t0 = time.monotonic()
        assert wait_for(lambda: len(_results(config)) == 1, timeout=60)
        print("first", time.monotonic() - t0)
    finally:
        proc.send_signal(signal.SIGTERM)
        t1 = time.monotonic()
        out, err = proc.communicate(timeout=30)
        print("shutdown", time.monotonic() - t1)
    assert proc.returncode == 0, err
    assert "1 moved, 0 failed" in out
    assert helpers.hosts_of(vcsim_small)[v.id] == dst


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
    conn = Connection(ConnectionSpec(sim.url, "u", "p"), retries=2, backoff_s=0.1)
    mover = VSphereMover(conn, scope, timeout_s=30, attempts=2, backoff_s=0.1)
    daemon = ActuatorDaemon(config, mover, f"act-{next(_groups)}", confirm_s=0)
    stop = threading.Event()
    worker = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    worker.start()
    try:
        assert daemon.ready.wait(30)
        _ = conn.si  # a live session, then the simulator dies under it
        sim.stop(signal.SIGKILL)
        moves = [{"vm": u(v.id), "src": u(v.host), "dst": u(helpers.sibling(inv, v.host))}
                 for v in on[:2]]  # fmt: skip
        _publish(config, _rec(cluster, "k1", [moves[0]]))
        assert wait_for(lambda: len(daemon.results) == 1)
        assert daemon.results[0].status == "failed"
        assert daemon.results[0].error.startswith("ConnectionLost")
        assert worker.is_alive(), "the actuator survived the lost vCenter"
        sim = start_vcsim(vcsim_bin, tmp_path / "b", *args, "-listen", f"127.0.0.1:{sim.port}")
        _publish(config, _rec(cluster, "k2", [moves[1]]))
        assert wait_for(lambda: len(daemon.results) == 2)
        assert daemon.results[1].status == "ok", daemon.results[1].error
        assert helpers.hosts_of(sim)[on[1].id] == helpers.sibling(inv, on[1].host)
    finally:
        stop.set()
        worker.join(20)
        sim.stop()
        conn.close()
    assert not worker.is_alive()
