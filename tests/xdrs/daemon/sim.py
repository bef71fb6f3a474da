"""The daemon without Kafka, on the replay platform: collector -> picture and engine directly.

A :class:`Bench` holds a replayed data centre (the real :class:`ReplayCollector` and its
timed mover), the real engine, and a :class:`Rebalancer`; events the collector publishes go
straight to the engine and the daemon's picture (the Kafka path is tested in
``test_service.py`` on the real brokers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collectors.events import ActionResult, Move, Recommendation
from collectors.replay import ReplayCollector
from collectors.replay.mover import LinkModel, ScaledClock, TimedMover
from collectors.replay.scenario import parse_scenario
from collectors.replay.traces import Trace
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.limits import Limits
from xdrs.daemon.picture import Picture
from xdrs.daemon.policy import Policy, PolicyFile
from xdrs.engine.engine import Engine, EngineArgs


def scenario(vms: int = 60, clusters: int = 2, hosts: int = 4):
    return parse_scenario({
        "format": "xdrs-replay-scenario/1", "vms": vms, "placement": "skewed",
        "clusters": [{"name": f"c{i}", "hosts": [{"count": hosts, "vcpus": 8,
                                                  "memory_mb": 65536}]}
                     for i in range(clusters)],
        "flavors": [{"vcpus": 2, "memory_mb": 4096}],
    })  # fmt: skip


def feed(running: Any, dc: ReplayCollector) -> None:
    """Publish ``dc``'s inventory, then one replay step every 0.2 s on a ``running``
    thread (stopped with the test): the daemon's picture on the bus."""
    dc.publish_inventory()
    running.start(lambda stop: [dc.publish_step(s) for s in range(10_000)
                                if not stop.wait(0.2)])  # fmt: skip


def steady_trace(v: int = 60, t: int = 288) -> Trace:
    cpu = np.repeat((10.0 + (np.arange(v) * 7) % 20)[:, None], t, axis=1)
    return Trace("steady", tuple(f"vm{i}" for i in range(v)), cpu)


class Fanout:
    """A sink delivering every event to the engine and the daemon's picture at once."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def publish(self, kind: str, key: str, event: object) -> None:
        b = self.bench
        if event is not None:
            b.engine.apply(event)  # type: ignore[arg-type]
            b.picture.apply(event, b.clock.monotonic())  # type: ignore[arg-type]

    def flush(self) -> None:
        pass


class RecordingMover:
    """The timed replay mover, noting every call (the platform's view of what was issued)."""

    def __init__(self, inner: TimedMover) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def owns(self, cluster: str) -> bool:
        return self.inner.owns(cluster)

    def move(self, rec: Recommendation, m: Move) -> ActionResult:
        self.calls.append(m.key)
        return self.inner.move(rec, m)


@dataclass
class Bench:
    # metrics never age here unless a test says so: the clock runs 2,000 times faster than
    # real time, and a busy machine must not turn a test of something else into a skip
    limits: Limits = field(default_factory=lambda: Limits(metric_age_s=1e9))
    model: LinkModel = field(default_factory=LinkModel)
    policy: Policy = field(default_factory=Policy)
    vms: int = 60
    hosts: int = 4
    scale: float = 2000.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.clock = ScaledClock(self.scale)
        self.picture = Picture()
        self.engine = Engine(EngineArgs(threshold=3, cooldown_s=0.0, pending_s=1e9, period_s=0))
        self.collector = ReplayCollector(scenario(self.vms, hosts=self.hosts),
                                         steady_trace(self.vms), Fanout(self), speed=0)  # fmt: skip
        self.mover = RecordingMover(TimedMover(self.collector, self.model, self.clock,
                                               seed=self.seed))  # fmt: skip
        self.journal: list[ActionResult] = []
        self.daemon = Rebalancer(self.mover, PolicyFile(policy=self.policy), self.limits,
                                 self.picture, self.clock.monotonic, self.record)  # fmt: skip
        self.collector.publish_inventory()
        self.collector.publish_step(0)
        self.step = 1

    def record(self, r: ActionResult, confirm: bool) -> bool:
        self.journal.append(r)
        self.engine.apply(r)
        return True

    def metrics(self) -> None:
        self.collector.publish_step(self.step)
        self.step += 1

    def plan(self, cluster: str, trigger: str = "imbalance") -> Recommendation | None:
        return self.engine.recommend(cluster, trigger, time.monotonic())

    def run_until_idle(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        self.daemon.tick()
        while not self.daemon.executor.idle():
            assert time.monotonic() < deadline, "the executor did not finish"
            time.sleep(0.002)
            self.daemon.tick()

    def imbalance(self, cluster: str) -> float:
        v = self.engine.view(cluster)
        assert v is not None
        return v.imbalance

    def statuses(self) -> dict[str, str]:
        """The last record of each key."""
        return {r.key: r.status for r in self.journal}


def spread_moves(c: ReplayCollector, cluster: str, n: int, rid: str) -> list[Move]:
    """``n`` moves off the fullest host of ``cluster`` to hosts with allocation room."""
    hosts = [i for i, h in enumerate(c.hosts) if h.cluster == cluster]
    used = np.array([c.alloc[c.place == h].sum(axis=0) for h in hosts])
    src = hosts[int(np.argmax(used[:, 0]))]
    moves = []
    for j in np.flatnonzero(c.place == src)[:n].tolist():
        room = [k for k, h in enumerate(hosts) if h != src
                and (used[k] + c.alloc[j] <= c.cap[h] + 1e-9).all()]  # fmt: skip
        k = min(room, key=lambda k: used[k, 0])
        used[k] += c.alloc[j]
        moves.append(Move(f"{rid}/{len(moves)}", c.vm_ids[j], c.hosts[src].uuid,
                          c.hosts[hosts[k]].uuid, "imbalance", wave=len(moves) // 2))  # fmt: skip
    return moves
