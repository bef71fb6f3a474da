"""End to end: simulator -> collector -> Kafka -> engine -> recommendation -> rebalancing daemon.

All real: the vCenter simulator, the event bridge, the embedded broker, the engine daemon
and the rebalancing daemon each in its own thread, as three processes would run them. The
outcome is read back from the simulator, never from the pipeline's own view.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from collectors.events import ActionResult
from collectors.retry import Patience
from collectors.vsphere import CollectorOptions, Connection, ConnectionSpec, VSphereCollector
from collectors.vsphere.events import BridgeOptions, EventBridge, scope_of
from collectors.vsphere.mover import VSphereMover
from placement import BalanceArgs, Rules, host_loads, metrics, run
from tests.collectors.vsphere import helpers
from tests.collectors.vsphere.conftest import Vcsim
from tests.collectors.vsphere.test_end_to_end import _members, _steps_sharing
from tests.support import wait_for
from xdrs.bus import BusConfig
from xdrs.bus.kafka import KafkaSink
from xdrs.daemon.service import RebalanceDaemon
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs

pytestmark = [pytest.mark.vcsim, pytest.mark.broker]

_ids = itertools.count()
SETTLE_TIMEOUT_S = 120.0  # a bound on waiting, not a speed assertion


class Pipeline:
    """Collector, engine and actuator threads over one simulator and one broker."""

    def __init__(self, sim: Vcsim, config: BusConfig, args: EngineArgs) -> None:
        n = next(_ids)
        scope = scope_of(sim.url)
        self.conns = [Connection(ConnectionSpec(sim.url, "u", "p"), retries=3) for _ in "ab"]
        self.sink = KafkaSink(config)
        self.bridge = EventBridge(self.sink, BridgeOptions(scope, inventory_every=0))
        self.collector = VSphereCollector(self.conns[0], self.bridge,
                                          CollectorOptions(interval_s=1.0, perf=False))  # fmt: skip
        self.engine = EngineDaemon(config, Engine(args), group=f"engine-{n}")
        mover = VSphereMover(self.conns[1], scope, Patience(timeout_s=30))
        self.actuator = RebalanceDaemon(config, mover)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=x.run, args=(self.stop,), daemon=True)
                        for x in (self.collector, self.engine, self.actuator)]  # fmt: skip
        for t in self.threads:
            t.start()

    @property
    def results(self) -> list[ActionResult]:
        """The migrations' results (not the started, held or skipped records)."""
        core = self.actuator.core
        return [] if core is None else [r for r in list(core.records)
                                        if r.status in ("ok", "failed")]  # fmt: skip

    @property
    def skipped(self) -> list[ActionResult]:
        core = self.actuator.core
        return [] if core is None else [r for r in list(core.records) if r.status == "skipped"]

    def settle(self, quiet_s: float = 4.0) -> None:
        """Wait until moves were applied and none came for ``quiet_s`` seconds."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        assert wait_for(lambda: len(self.results) > 0, SETTLE_TIMEOUT_S), "no move"
        last, since = len(self.results), time.monotonic()
        while time.monotonic() - since < quiet_s:
            assert time.monotonic() < deadline, "the pipeline kept moving VMs"
            time.sleep(0.2)
            if len(self.results) != last:
                last, since = len(self.results), time.monotonic()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(20)
        self.sink.close()
        for c in self.conns:
            c.close()
        assert not any(t.is_alive() for t in self.threads)


@pytest.fixture
def pipelines() -> Iterator[Any]:
    made: list[Pipeline] = []

    def start(sim: Vcsim, config: BusConfig, args: EngineArgs) -> Pipeline:
        p = Pipeline(sim, config, args)
        made.append(p)
        return p

    yield start
    for p in made:
        p.close()


def test_overload_balanced_and_anti_affinity_kept(
    vcsim_small: Vcsim, config: BusConfig, pipelines: Any
) -> None:
    before = helpers.state(vcsim_small)
    assert host_loads(before)[:, 0].max() > 1.0, "fixture has overloaded hosts"
    inv = helpers.inventory(vcsim_small)
    members = _members(before)
    with vcsim_small.connect() as admin:
        helpers.add_anti_affinity(admin, inv.clusters[0].id, "keep-apart", members)
    st = helpers.state(vcsim_small)
    idx = [st.vm_ids.index(v) for v in members]
    free = run("balance", dataclasses.replace(st, rules=Rules.empty(st.n_hosts)),
               BalanceArgs(threshold=5), seed=0)  # fmt: skip
    assert _steps_sharing(free, st, idx) > 0, "without the rule, members would share a host"
    p = pipelines(vcsim_small, config, EngineArgs(threshold=5, cooldown_s=1.0, pending_s=30.0))
    p.settle()
    after = helpers.state(vcsim_small)  # recomputed from the simulator
    assert metrics(after).cpu_load_sd < metrics(before).cpu_load_sd
    assert metrics(after).cpu_load_max < metrics(before).cpu_load_max
    scope = scope_of(vcsim_small.url)
    cluster_of = {f"{scope}/{h.id}": h.cluster for h in inv.hosts}
    ok = [r for r in p.results if r.status == "ok"]
    assert len(ok) == len(p.results), "no migration failed"
    assert not [r for r in p.skipped if r.error.startswith("stale")], "no stale plan"
    assert ok and all(cluster_of[r.src] == cluster_of[r.dst] for r in ok)
    place = {f"{scope}/{v.id}": f"{scope}/{v.host}" for v in inv.vms}
    watched = [f"{scope}/{v}" for v in members]
    for r in ok:  # every intermediate placement, in the order the moves were applied
        place[r.vm] = r.dst
        assert len({place[v] for v in watched}) == len(watched), f"members share after {r.key}"
    now = helpers.hosts_of(vcsim_small)
    assert len({now[v] for v in members}) == len(members)
    applied = {v.removeprefix(f"{scope}/"): h.removeprefix(f"{scope}/") for v, h in place.items()}
    assert now == applied, "the simulator holds exactly the applied moves"


def test_maintenance_host_evacuated(vcsim_small: Vcsim, config: BusConfig, pipelines: Any) -> None:
    inv = helpers.inventory(vcsim_small)
    target = inv.hosts[3]
    running = [v.id for v in inv.vms if v.powered_on and v.host == target.id]
    assert running
    p = pipelines(vcsim_small, config, EngineArgs(threshold=1, cooldown_s=1.0, pending_s=30.0))
    assert wait_for(lambda: any(v.complete for v in p.engine.views.values()), 60)
    with vcsim_small.connect() as admin:
        helpers.wait_task(helpers.host(admin, target.id).EnterMaintenanceMode_Task(timeout=0))

    def evacuated() -> bool:
        now = helpers.hosts_of(vcsim_small)
        return all(now[v] != target.id for v in running)

    assert wait_for(evacuated, SETTLE_TIMEOUT_S, every=0.5), "host not evacuated"
    assert any(r.trigger == "maintenance" for r in p.engine.published)
    now = helpers.hosts_of(vcsim_small)
    same_cluster = {h.id for h in inv.hosts if h.cluster == target.cluster}
    assert all(now[v] in same_cluster for v in running), "moved within the cluster"
    scope = scope_of(vcsim_small.url)
    assert all(r.dst != f"{scope}/{target.id}" for r in p.results), "nothing moved onto it"
