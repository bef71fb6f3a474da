"""The whole path on real components: load made uneven through our exporter -> Prometheus ->
the OpenStack collector -> Kafka (Tansu) -> engine -> recommendation -> rebalancing daemon
-> NovaMover -> Nova, which then reports the servers on their new hosts, with Placement's
usages in agreement. An anti-affinity group is never violated by a proposed move, a host
whose compute service is disabled is evacuated, a host whose series are missing in
Prometheus receives nothing until they return, and nothing moves across zones."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from collectors.events import ActionResult, Move, Recommendation, VmEvent
from collectors.openstack import NOVA_PATIENCE, NovaMover, cluster_id
from collectors.openstack.collector import CollectorOptions, OpenStackCollector
from placement import ClusterState, Rules
from placement.strategies import run
from tests.collectors.openstack.conftest import (
    CLOUD,
    ZONES,
    Cloud,
    Load,
    boot,
    delete_all,
    unique,
)
from tests.support import wait_for
from tests.xdrs.bus.conftest import Broker, read_all
from xdrs.bus import BusConfig, Topics
from xdrs.bus.kafka import KafkaSink, create_topics
from xdrs.daemon.limits import PLATFORM_LIMITS
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs, Trigger

pytestmark = [pytest.mark.openstack, pytest.mark.prometheus, pytest.mark.broker]


class PlanningEngine(Engine):
    """The real engine, keeping each recommendation with the state it was planned on (read
    in the engine's thread right after planning: the same picture)."""

    def __init__(self, args: EngineArgs) -> None:
        super().__init__(args)
        self.planned: list[tuple[Recommendation, ClusterState]] = []

    def recommend(
        self, name: str, trigger: Trigger, now: float, wall: float | None = None
    ) -> Recommendation | None:
        rec = super().recommend(name, trigger, now, wall)
        if rec is not None:
            self.planned.append((rec, self.tables[name].to_state(self.args.stale_s)))
        return rec


@dataclass
class Pipeline:
    config: BusConfig
    collector: OpenStackCollector
    engine: EngineDaemon
    results: list[ActionResult]
    planner: PlanningEngine

    def moves(self) -> list[Move]:
        return [m for r in list(self.engine.published) for m in r.moves]


@pytest.fixture(scope="module")
def pipeline(cloud: Cloud, conn: Any, load: Load, broker: Broker) -> Iterator[Pipeline]:
    config = BusConfig(broker.bootstrap, topics=Topics(f"os{time.time_ns()}."),
                       fast_groups=True)  # fmt: skip
    create_topics(config)
    sink = KafkaSink(config)
    opts = CollectorOptions(CLOUD, interval_s=1.0, names=load.names)
    collector = OpenStackCollector(conn, load.client(), sink, opts)
    planner = PlanningEngine(EngineArgs(cooldown_s=2.0, pending_s=60.0))
    engine = EngineDaemon(config, planner, group=f"engine-{time.time_ns()}")
    mover_conn = cloud.connect()  # the mover's own session: it runs in the daemon's threads
    limits = replace(PLATFORM_LIMITS["nova"], vm_cooldown_s=0.0, host_hold_s=0.0,
                     backoff_s=5.0, metric_age_s=30.0)  # fmt: skip
    results: list[ActionResult] = []
    mover = NovaMover(mover_conn, CLOUD, replace(NOVA_PATIENCE, timeout_s=120, poll_s=0.5))
    daemon = RebalanceDaemon(config, mover, DaemonOptions(limits=limits, on_record=results.append))
    stop = threading.Event()
    threads = [threading.Thread(target=t.run, args=(stop,), daemon=True)
               for t in (collector, engine, daemon)]  # fmt: skip
    for t in threads:
        t.start()
    try:
        yield Pipeline(config, collector, engine, results, planner)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        sink.close()
        mover_conn.close()


def _host(conn: Any, server: Any) -> str:
    return str(conn.compute.get_server(server.id).compute_host)


def _placement_usage(conn: Any) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Placement's VCPU and memory usage of every host, and what Nova's servers there use."""
    flavors = {f.name: f for f in conn.compute.flavors()}
    want = {h: [0, 0] for h in ZONES}
    for s in conn.compute.servers(details=True, all_projects=True):
        if s.compute_host is None:  # never placed (ERROR at boot): no allocation
            continue
        f = flavors[s.flavor.original_name]
        want[s.compute_host][0] += f.vcpus
        want[s.compute_host][1] += f.ram
    got = {}
    for rp in conn.placement.resource_providers():
        usages = conn.placement.get(f"/resource_providers/{rp.id}/usages").json()["usages"]
        got[rp.name] = [usages.get("VCPU", 0), usages.get("MEMORY_MB", 0)]
    return got, want


def _placement_agrees(conn: Any) -> None:
    """Placement agrees with Nova once Nova's clean-up after the last migration is done
    (the source's allocation goes after the server is active on its destination)."""
    seen: list[Any] = []

    def agree() -> bool:
        seen[:] = _placement_usage(conn)
        return seen[0] == seen[1]

    assert wait_for(agree, 60, every=1.0), f"Placement {seen[0]} != Nova {seen[1]}"


def _same_zone(moves: list[Move]) -> None:
    for m in moves:
        src, dst = m.src.removeprefix(f"{CLOUD}/"), m.dst.removeprefix(f"{CLOUD}/")
        assert ZONES[src] == ZONES[dst], f"{m.vm}: {src} ({ZONES[src]}) -> {dst} ({ZONES[dst]})"


def test_uneven_load_is_balanced_inside_the_zone_never_against_anti_affinity(
    conn: Any, load: Load, pipeline: Pipeline
) -> None:
    group = conn.compute.create_server_group(name=unique("apart"), policy="anti-affinity")
    hint = {"group": group.id}
    made: list[Any] = []
    try:
        # every server idle (5 %) from its creation on, until the engine has them all
        a1 = _boot_idle(conn, load, made, "a1", "m1.medium", "az1:fake-1", scheduler_hints=hint)
        a2 = _boot_idle(conn, load, made, "a2", "m1.medium", "az1:fake-2", scheduler_hints=hint)
        busy = [_boot_idle(conn, load, made, "b", "m1.medium", "az1:fake-1") for _ in range(2)]
        other = _boot_idle(conn, load, made, "c", "m1.small", "az2:fake-3")
        load.refresh(conn)
        assert wait_for(lambda: _all_fresh(pipeline, made), 90, every=0.5)
        start = len(pipeline.planner.planned)
        # then at once: fake-1 at 1.9 + 2 x 1.4 of 10 cores, fake-2 at 0.1; a1, the busiest,
        # to fake-2 is the best move at every step of the ramp, and the rule forbids it
        load.model.set(a1.id, 95.0)
        for s in busy:
            load.model.set(s.id, 70.0)

        def moved() -> bool:
            return any(_host(conn, s) == "fake-2" for s in busy)

        assert wait_for(moved, 180, every=1.0), (pipeline.moves(), pipeline.results)
        assert _host(conn, a1) == "fake-1" and _host(conn, a2) == "fake-2"
        assert _host(conn, other) == "fake-3"
        moves = pipeline.moves()
        _same_zone(moves)
        apart = {f"{CLOUD}/{a1.id}": "fake-2", f"{CLOUD}/{a2.id}": "fake-1"}
        assert not [m for m in moves if m.dst == f"{CLOUD}/{apart.get(m.vm)}"], moves
        _rule_decided(pipeline.planner.planned[start:], pipeline, group.id, (a1, a2), busy)
        ok = [r for r in pipeline.results if r.status == "ok"]
        assert {r.vm for r in ok} <= {f"{CLOUD}/{s.id}" for s in busy}
        assert wait_for(lambda: _quiet(conn, made), 60, every=1.0)
        _placement_agrees(conn)
        done = [r.event for r in read_all(pipeline.config, pipeline.config.topics.actions)]
        assert any(isinstance(e, ActionResult) and e.status == "ok" for e in done)
    finally:
        for s in made:
            load.model.set(s.id, None)
        delete_all(conn, made)
        conn.compute.delete_server_group(group)


def _boot_idle(conn: Any, load: Load, made: list[Any], name: str, flavor: str, zone: str,
               **kw: Any) -> Any:  # fmt: skip
    """``boot`` with the server's load fixed at 5 % before Nova lists it."""
    image = next(i for i in conn.image.images() if i.name == "xdrs-test")
    fl = conn.compute.find_flavor(flavor, ignore_missing=False)
    s = conn.compute.create_server(name=unique(name), image_id=image.id, flavor_id=fl.id,
                                   networks="none", availability_zone=zone, **kw)  # fmt: skip
    made.append(s)
    load.model.set(s.id, 5.0)
    return conn.compute.wait_for_server(s, wait=120, interval=0.5)


def _all_fresh(pipeline: Pipeline, servers: list[Any]) -> bool:
    """Every server of ``servers`` published unpinned (its series fresh) and the engine's
    picture complete (every VM has a sample)."""
    ours = {f"{CLOUD}/{s.id}" for s in servers}
    published = {e.uuid for e in list(pipeline.collector.current.values())
                 if isinstance(e, VmEvent) and not e.pinned}  # fmt: skip
    view = pipeline.engine.views.get(cluster_id(CLOUD))
    return ours <= published and view is not None and view.complete


def _rule_decided(planned: list[tuple[Recommendation, ClusterState]], pipeline: Pipeline,
                  group: str, a: tuple[Any, Any], busy: list[Any]) -> None:  # fmt: skip
    """The rule reached the engine, and decided: the first recommendation that moved a busy
    server off fake-1 was planned on a state holding the rule (a1 and a2 apart) with a1
    free to move; the same state without the rule makes the engine move a1 to fake-2."""
    a1, a2 = a
    b_ids = {f"{CLOUD}/{s.id}" for s in busy}
    rec, state = next((r, st) for r, st in planned if any(m.vm in b_ids for m in r.moves))
    vm = {v: i for i, v in enumerate(state.vm_ids)}
    pair = sorted(vm[f"{CLOUD}/{s.id}"] for s in (a1, a2))
    rules = state.rules
    g = next(k for k, n in enumerate(rules.vv_names) if n.endswith(f"({group})"))
    assert rules.vv_anti[g] and sorted(rules.vv_vm[rules.vv_group == g].tolist()) == pair
    assert state.host_ids[state.placement[vm[f"{CLOUD}/{a1.id}"]]] == f"{CLOUD}/fake-1"
    assert not state.pinned[vm[f"{CLOUD}/{a1.id}"]]
    assert all(state.host_ids[state.placement[vm[b]]] == f"{CLOUD}/fake-1" for b in b_ids)
    free = dataclasses.replace(state, rules=Rules.empty(state.n_hosts))
    args = pipeline.planner.args.balance()
    plan = run("balance", free, args, seed=pipeline.planner.seed)
    first = (state.vm_ids[plan.vm[0]], state.host_ids[plan.dst[0]])
    assert first == (f"{CLOUD}/{a1.id}", f"{CLOUD}/fake-2"), (first, rec.moves)
    assert rec.moves[0].vm in b_ids and rec.moves[0].dst == f"{CLOUD}/fake-2", rec.moves


def _quiet(conn: Any, servers: list[Any]) -> bool:
    """No server of ``servers`` migrating."""
    return all(conn.compute.get_server(s.id).task_state is None for s in servers)


def test_a_disabled_compute_service_is_evacuated_inside_its_zone(
    conn: Any, load: Load, pipeline: Pipeline
) -> None:
    made: list[Any] = []
    service = next(s for s in conn.compute.services(binary="nova-compute") if s.host == "fake-2")
    try:
        for _ in range(2):
            made.append(boot(conn, unique("evac"), "m1.small", availability_zone="az1:fake-2"))
        load.refresh(conn)
        conn.compute.disable_service(service, disabled_reason="xdrs evacuation test")

        def evacuated() -> bool:
            return all(_host(conn, s) == "fake-1" for s in made) and _quiet(conn, made)

        assert wait_for(evacuated, 180, every=1.0), (pipeline.moves(), pipeline.results)
        ours = {f"{CLOUD}/{s.id}" for s in made}
        evac = [m for m in pipeline.moves() if m.vm in ours]
        assert evac and {m.reason for m in evac} == {"maintenance"}
        _same_zone(pipeline.moves())
        _placement_agrees(conn)
    finally:
        conn.compute.enable_service(service)
        delete_all(conn, made)


def test_a_host_without_series_receives_nothing_until_they_return(
    conn: Any, load: Load, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    load.model.hide("fake-2")
    made: list[Any] = []
    cluster, fake1 = cluster_id(CLOUD), f"{CLOUD}/fake-1"

    def busy_and_held() -> bool:
        view = pipeline.engine.views.get(cluster)
        if view is None or not view.complete or fake1 not in view.hosts:
            return False
        held = f"{CLOUD}/fake-2" in pipeline.collector.held_hosts
        return held and float(view.cpu_load[view.hosts.index(fake1)]) > 0.3

    def moved() -> bool:
        return any(_host(conn, s) == "fake-2" for s in made)

    try:
        for _ in range(2):
            _boot_idle(conn, load, made, "held", "m1.medium", "az1:fake-1")
        ours = {f"{CLOUD}/{s.id}" for s in made}
        load.refresh(conn)
        for s in made:
            load.model.set(s.id, 95.0)
        assert wait_for(busy_and_held, 90, every=0.5)
        # fake-1 busy, its only zone peer held: the engine plans the cluster three more
        # times (a positive signal, not a sleep), and no plan moves one of ours
        runs = [0]
        real = pipeline.planner.recommend

        def counted(name: str, *args: Any, **kw: Any) -> Any:
            runs[0] += name == cluster
            return real(name, *args, **kw)

        monkeypatch.setattr(pipeline.planner, "recommend", counted)
        assert wait_for(lambda: runs[0] >= 3, 60, every=0.5), runs
        assert not [m for m in pipeline.moves() if m.vm in ours], pipeline.moves()
        assert all(_host(conn, s) == "fake-1" for s in made)
        # the same load with fake-2's series back: now a server goes there
        load.model.hide("fake-2", False)
        assert wait_for(moved, 180, every=1.0), pipeline.moves()
        assert wait_for(lambda: _quiet(conn, made), 60, every=1.0)
    finally:
        load.model.hide("fake-2", False)
        for s in made:
            load.model.set(s.id, None)
        delete_all(conn, made)
