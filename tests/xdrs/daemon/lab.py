"""A small, fully controlled cluster for the executor's tests: a manual clock, a mover whose
migrations end when the test says so, and a picture built from real inventory events.

Time is the lab's clock only (:class:`ManualClock`, advanced by the test), so the timeline
the executor records is exact; :meth:`Lab.step` waits for the mover's threads to return
before the next tick, so every run is deterministic.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from collectors.events import (
    ActionResult,
    HostEvent,
    MetricBatch,
    Move,
    Recommendation,
    Rule,
    RulesEvent,
    VmEvent,
    move_result,
)
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.limits import Limits
from xdrs.daemon.picture import Picture
from xdrs.daemon.policy import Policy, PolicyFile

WALL0 = 1.8e9  # the lab's epoch: recommendations are stamped with it, wall = WALL0 + clock
CLUSTER = "c0"


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return WALL0 + self.t


class GatedMover:
    """Succeeds at once, unless the key is ``blocked`` (then it waits for :meth:`release`)
    or listed in ``fail`` (then it fails with that reason)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: dict[str, str] = {}
        self.blocked: set[str] = set()
        self._gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def owns(self, cluster: str) -> bool:
        return True

    def _gate(self, key: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(key, threading.Event())

    def release(self, key: str, error: str = "") -> None:
        if error:
            self.fail[key] = error
        self.blocked.discard(key)
        self._gate(key).set()

    def move(self, rec: Recommendation, m: Move) -> ActionResult:
        with self._lock:
            self.calls.append(m.key)
        if m.key in self.blocked:
            assert self._gate(m.key).wait(30), f"{m.key} was never released"
        return move_result(rec, m, self.fail.get(m.key, ""))


def host(i: int) -> str:
    return f"h{i}"


def vm(i: int) -> str:
    return f"v{i}"


@dataclass
class Lab:
    """``hosts`` hosts of 64 cores and 256 GiB; VM ``v{i}`` (1 core, 1 GiB) on host
    ``placement[i]`` (default: round robin); every host has sent metrics."""

    hosts: int = 4
    vms: int = 8
    placement: list[int] | None = None
    limits: Limits = field(default_factory=lambda: Limits(metric_age_s=1e9))
    policy: Policy = field(default_factory=Policy)
    pinned: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        self.clock = ManualClock()
        self.picture = Picture()
        self.mover = GatedMover()
        self.journal: list[ActionResult] = []
        self.policy_file = PolicyFile(policy=self.policy)
        self.daemon = Rebalancer(self.mover, self.policy_file, self.limits, self.picture,
                                 self.clock.now, self.record, self.clock.wall)  # fmt: skip
        place = self.placement or [i % self.hosts for i in range(self.vms)]
        for h in range(self.hosts):
            self.picture.apply(HostEvent(CLUSTER, host(h), 64, 262144), 0.0)
        for i, h in enumerate(place):
            self.picture.apply(VmEvent(CLUSTER, vm(i), host(h), 1, 1024,
                                       pinned=i in self.pinned), 0.0)  # fmt: skip
        for h in range(self.hosts):
            on = [vm(i) for i, x in enumerate(place) if x == h]
            self.picture.apply(MetricBatch(CLUSTER, host(h), 1.0, 1, on, [10.0] * len(on),
                                           [512.0] * len(on)), 0.0)  # fmt: skip

    def record(self, r: ActionResult, confirm: bool) -> bool:
        self.journal.append(r)
        return True

    def rules(self, *rules: Rule) -> None:
        self.picture.apply(RulesEvent(CLUSTER, list(rules)), self.clock.t)

    def rec(self, rid: str, *moves: tuple) -> Recommendation:
        """A recommendation of moves ``(vm, src, dst[, reason])`` by index, in order."""
        out = [Move(f"{rid}/{k}", vm(x[0]), host(x[1]), host(x[2]),
                    x[3] if len(x) > 3 else "imbalance", wave=k)
               for k, x in enumerate(moves)]  # fmt: skip
        return Recommendation(rid, CLUSTER, "imbalance", "balance", WALL0 + self.clock.t,
                              1.0, 0.5, out)  # fmt: skip

    def settle(self) -> None:
        """Wait until every migration in flight that is not blocked has returned (an adopted
        one made no call here: the picture ends it)."""
        for f in list(self.daemon.executor.flights.values()):
            if f.move.key not in self.mover.blocked and not f.adopted:
                f.future.result(timeout=30)

    def release(self, key: str, error: str = "") -> None:
        """Let the blocked migration ``key`` return (failed with ``error``, if given) and
        wait until it has: the next tick collects it."""
        self.mover.release(key, error)
        self.settle()

    def step(self, dt: float = 1.0) -> None:
        """One tick at the current time, the migrations it started returned, then ``dt``."""
        self.daemon.tick()
        self.settle()
        self.clock.t += dt

    def run(self, steps: int = 100, dt: float = 1.0) -> None:
        for _ in range(steps):
            self.step(dt)
            if self.daemon.executor.idle():
                return
        raise AssertionError(f"the executor was not idle after {steps} steps")

    def last(self) -> dict[str, ActionResult]:
        """The last record of each key."""
        return {r.key: r for r in self.journal}

    def starts(self) -> list[tuple[float, str]]:
        return [(s.t, s.key) for s in self.daemon.executor.timeline if s.kind == "start"]
